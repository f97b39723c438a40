package cidr

import (
	"errors"
	"unsafe"
)

// A lut is the compiled form of a partition of a W-bit key space into
// labelled segments: a multibit trie whose first level indexes the top 16
// bits directly and whose lower levels index 8 bits each, down to chunks of
// few segments, which are kept as small sorted leaves.
//
// Every level is a flat array of uint32 entries, so a lookup is at most a
// few dependent loads into three arrays and never follows a Go pointer:
//
//   - a label entry (kind 0) holds the label of the whole chunk;
//   - a node entry (kind 2) holds the index of a 256-entry block in nodes,
//     indexed by the next 8 bits of the key;
//   - a leaf entry (kind 1) holds the offset and length (1 to 64) of a run
//     of ents, the segments of the chunk in ascending order. Each is packed
//     as key<<16 | label, the key being the bits below the top 16, so that
//     one comparison against k<<16|0xffff finds the segment holding k and
//     the label comes with it, from the same cache line. The first entry of
//     a leaf is the chunk's own start.
//
// Chunks become nodes only when they hold more segments than the leaf
// limit, which bounds the memory of the nodes by the number of segments.
type lut[W ~uint32 | ~uint64] struct {
	top   []uint32 // 1<<16 entries, empty for the zero lut
	nodes []uint32 // blocks of 256 entries
	ents  []W      // leaves
}

const (
	kindLabel = 0
	kindLeaf  = 1
	kindNode  = 2

	payloadBits = 24
	payloadMask = 1<<payloadBits - 1
	maxLeaf     = 64 // 6 bits of length
)

var errTooLarge = errors.New("cidr: table too large (more than 16M leaf entries or nodes per family)")

// lutBuilder compiles a partition into a lut.
type lutBuilder[W ~uint32 | ~uint64] struct {
	lut[W]
	width int // W's bits
	leaf  int // the leaf limit, 1..maxLeaf
	err   error
}

func compileLUT[W ~uint32 | ~uint64](segs []run[W], leaf int) (lut[W], error) {
	var zero W
	b := &lutBuilder[W]{width: int(unsafe.Sizeof(zero)) * 8, leaf: leaf}
	b.top = make([]uint32, 1<<16)
	shift := uint(b.width - 16)
	j := 0 // the segment holding the current chunk's start
	for i := range b.top {
		lo := W(i) << shift
		hi := lo | (W(1)<<shift - 1)
		// Advance j to the last segment starting at or before lo.
		for j+1 < len(segs) && segs[j+1].start <= lo {
			j++
		}
		k := j + 1 // one past the last segment starting at or before hi
		for k < len(segs) && segs[k].start <= hi {
			k++
		}
		b.top[i] = b.chunk(segs[j:k], lo, 16)
	}
	return b.lut, b.err
}

// chunk compiles the segments of the chunk starting at lo of the given
// prefix length; segs[0] holds lo, and every other segment starts inside.
func (b *lutBuilder[W]) chunk(segs []run[W], lo W, depth int) uint32 {
	if len(segs) == 1 {
		return kindLabel<<30 | uint32(segs[0].label)
	}
	// A chunk of the last level is a single key, so one segment: every leaf
	// is at most b.leaf long.
	if len(segs) <= b.leaf {
		off := len(b.ents)
		if off+len(segs) > payloadMask+1 {
			b.err = errTooLarge
			return 0
		}
		low := W(1)<<uint(b.width-16) - 1
		for i, s := range segs {
			k := s.start
			if i == 0 {
				k = lo
			}
			b.ents = append(b.ents, (k&low)<<16|W(s.label))
		}
		return kindLeaf<<30 | uint32(len(segs)-1)<<payloadBits | uint32(off)
	}
	n := len(b.nodes) / 256
	if n > payloadMask {
		b.err = errTooLarge
		return 0
	}
	b.nodes = append(b.nodes, make([]uint32, 256)...)
	shift := uint(b.width - depth - 8)
	j := 0
	for c := range 256 {
		clo := lo | W(c)<<shift
		chi := clo | (W(1)<<shift - 1)
		for j+1 < len(segs) && segs[j+1].start <= clo {
			j++
		}
		k := j + 1
		for k < len(segs) && segs[k].start <= chi {
			k++
		}
		b.nodes[n*256+c] = b.chunk(segs[j:k], clo, depth+8)
	}
	return kindNode<<30 | uint32(n)
}

func (t *lut[W]) size() int {
	return len(t.top)*4 + len(t.nodes)*4 + len(t.ents)*int(unsafe.Sizeof(W(0)))
}

// lookup32 and lookup64 are the lookup written out for each width, so that
// every shift is a constant.

func lookup32(t *lut[a4], k a4) uint16 {
	if len(t.top) == 0 {
		return labelNone
	}
	e := t.top[k>>16]
	for shift := 8; e>>30 == kindNode; shift -= 8 {
		e = t.nodes[(e&payloadMask)<<8|uint32(k>>uint(shift))&0xff]
	}
	if e>>30 == kindLabel {
		return uint16(e)
	}
	ents := t.ents[e&payloadMask:]
	n := int(e>>payloadBits&63) + 1
	ents = ents[:n]
	x := k<<16 | 0xffff
	// Branch-free binary search for the last entry ≤ x; ents[0] always is.
	base := 0
	for n > 1 {
		half := n >> 1
		if ents[base+half] <= x {
			base += half
		}
		n -= half
	}
	return uint16(ents[base])
}

func lookup64(t *lut[uint64], k uint64) uint16 {
	if len(t.top) == 0 {
		return labelNone
	}
	e := t.top[k>>48]
	for shift := 40; e>>30 == kindNode; shift -= 8 {
		e = t.nodes[(e&payloadMask)<<8|uint32(k>>uint(shift))&0xff]
	}
	if e>>30 == kindLabel {
		return uint16(e)
	}
	ents := t.ents[e&payloadMask:]
	n := int(e>>payloadBits&63) + 1
	ents = ents[:n]
	x := k<<16 | 0xffff
	base := 0
	for n > 1 {
		half := n >> 1
		if ents[base+half] <= x {
			base += half
		}
		n -= half
	}
	return uint16(ents[base])
}
