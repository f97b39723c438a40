package cidr

import (
	"errors"
	"math/bits"
	"unsafe"
)

// A lut is the compiled form of a partition of a W-bit key space into
// labelled segments: a multibit trie whose first level indexes the top 16
// bits directly and whose lower levels index as many bits as their chunk
// needs, down to chunks of few segments, which are kept as small sorted
// leaves.
//
// Every level is a flat array of uint32 entries, so a lookup is a few
// dependent loads into three arrays and never follows a Go pointer:
//
//   - a label entry (kind 0) holds the label of the whole chunk;
//   - a node entry (kind 2) holds a stride s (1 to 16) and the offset of a
//     block of 1<<s entries in nodes, indexed by the next s bits of the key;
//   - a leaf entry (kind 1) holds the offset and length (1 to 64) of a run
//     of ents, the segments of the chunk in ascending order. Each is packed
//     as key<<16 | label, the key being the bits below the top 16, so that
//     one comparison against k<<16|0xffff finds the segment holding k and
//     the label comes with it, from the same cache line. The first entry of
//     a leaf is the chunk's own start.
//
// A node's stride grows with the number of segments of its chunk, one to
// two entries per segment: dense chunks (a /16 of IPv6 holding
// thousands of /48s) are crossed in one step, sparse ones cost little
// memory, and the memory of the nodes stays proportional to the number of
// segments.
type lut[W ~uint32 | ~uint64] struct {
	top   []uint32 // 1<<16 entries, empty for the zero lut
	nodes []uint32 // blocks of 1<<stride entries
	ents  []W      // leaves
}

const (
	kindLabel = 0
	kindLeaf  = 1
	kindNode  = 2

	leafBits  = 24 // a leaf's offset; its length-1 takes the next 6 bits
	leafMask  = 1<<leafBits - 1
	nodeBits  = 26 // a node's offset; its stride-1 takes the next 4 bits
	nodeMask  = 1<<nodeBits - 1
	maxLeaf   = 64
	maxStride = 16
)

var errTooLarge = errors.New("cidr: table too large (more than 16M leaf entries or 64M node entries per family)")

// trieBuilder compiles a partition into the top level and nodes of a trie;
// leaf writes the leaves, in a form of its own, and label the entries of
// chunks of a single segment.
type trieBuilder[W ~uint32 | ~uint64] struct {
	top, nodes []uint32
	width      int // W's bits
	maxLeaf    int // the most segments a leaf holds, 1..maxLeaf
	label      func(l uint16) uint32
	leaf       func(segs []run[W], lo W) uint32
	err        error
}

func newTrieBuilder[W ~uint32 | ~uint64](maxLeaf int) *trieBuilder[W] {
	var zero W
	return &trieBuilder[W]{width: int(unsafe.Sizeof(zero)) * 8, maxLeaf: maxLeaf}
}

func (b *trieBuilder[W]) build(segs []run[W]) {
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
}

func compileLUT[W ~uint32 | ~uint64](segs []run[W], leaf int) (lut[W], error) {
	b := newTrieBuilder[W](leaf)
	var ents []W
	low := W(1)<<uint(b.width-16) - 1
	b.label = func(l uint16) uint32 { return kindLabel<<30 | uint32(l) }
	b.leaf = func(segs []run[W], lo W) uint32 {
		off := len(ents)
		if off+len(segs) > leafMask+1 {
			b.err = errTooLarge
			return 0
		}
		for i, s := range segs {
			k := s.start
			if i == 0 {
				k = lo
			}
			ents = append(ents, (k&low)<<16|W(s.label))
		}
		return kindLeaf<<30 | uint32(len(segs)-1)<<leafBits | uint32(off)
	}
	b.build(segs)
	// Padding, so that a leaf's search may take a whole array of leaf
	// entries wherever the leaf lies.
	ents = append(ents, make([]W, leaf)...)
	return lut[W]{b.top, b.nodes, ents}, b.err
}

// chunk compiles the segments of the chunk starting at lo of the given
// prefix length; segs[0] holds lo, and every other segment starts inside.
func (b *trieBuilder[W]) chunk(segs []run[W], lo W, depth int) uint32 {
	if len(segs) == 1 {
		return b.label(segs[0].label)
	}
	// A chunk of the last level is a single key, so one segment: every leaf
	// is at most b.maxLeaf long.
	if len(segs) <= b.maxLeaf {
		return b.leaf(segs, lo)
	}
	stride := min(max(bits.Len(uint(len(segs))), 4), maxStride, b.width-depth)
	off := len(b.nodes)
	if off+1<<stride > nodeMask+1 {
		b.err = errTooLarge
		return 0
	}
	b.nodes = append(b.nodes, make([]uint32, 1<<stride)...)
	shift := uint(b.width - depth - stride)
	j := 0
	for c := range 1 << stride {
		clo := lo | W(c)<<shift
		chi := clo | (W(1)<<shift - 1)
		for j+1 < len(segs) && segs[j+1].start <= clo {
			j++
		}
		k := j + 1
		for k < len(segs) && segs[k].start <= chi {
			k++
		}
		b.nodes[off+c] = b.chunk(segs[j:k], clo, depth+stride)
	}
	return kindNode<<30 | uint32(stride-1)<<nodeBits | uint32(off)
}

// descend32 and descend64 finish a lookup of k whose top-level entry e is
// not a label; the caller reads the top level itself, so that the common
// case of a label there costs no call. They are written out for each width
// so that every shift is a constant.
//
// Their leaf search takes a fixed number of steps, the same for every leaf
// (5 for leaf4, 4 for leaf6), each a conditional move: the reads past the
// leaf's last entry are clamped to it, which keeps the entries seen sorted,
// and so does not change the answer. A loop that stopped at the leaf's
// length would mispredict its exit whenever leaf lengths vary, and a
// mispredicted branch costs more than the steps it saves. The steps are
// written as arithmetic (a borrow for "greater than", minU) because the
// compiler turns the if-statement form into branches here.

// minU returns min(a, b) without a branch.
func minU(a, b uint) uint {
	_, over := bits.Sub(b, a, 0) // 1 if a > b
	return a - (a-b)&-over
}

func descend32(t *lut[a4], e uint32, k a4) uint16 {
	for shift := uint(16); e>>30 == kindNode; {
		s := uint(e>>nodeBits&15) + 1
		shift -= s
		// The masks tell the compiler that the shifts are in range.
		e = t.nodes[e&nodeMask+uint32(k>>(shift&63))&(1<<(s&31)-1)]
	}
	if e>>30 == kindLabel {
		return uint16(e)
	}
	last := uint(e >> leafBits & 63) // the leaf's length less one, < leaf4
	off := e & leafMask
	w := (*[leaf4]a4)(t.ents[off : off+leaf4]) // ents is padded
	x := k<<16 | 0xffff
	b := step4(w, x, 0, 16, last) // the last entry ≤ x; w[0] always is
	b = step4(w, x, b, 8, last)
	b = step4(w, x, b, 4, last)
	b = step4(w, x, b, 2, last)
	b = step4(w, x, b, 1, last)
	return uint16(w[minU(b, last)&(leaf4-1)])
}

// step4 is one step of descend32's search: b+half if the entry there
// (clamped to the leaf) is ≤ x, else b.
func step4(w *[leaf4]a4, x a4, b, half, last uint) uint {
	_, gt := bits.Sub32(uint32(x), uint32(w[minU(b+half, last)&(leaf4-1)]), 0)
	return b + half&^-uint(gt)
}

func descend64(t *lut[uint64], e uint32, k uint64) uint16 {
	for shift := uint(48); e>>30 == kindNode; {
		s := uint(e>>nodeBits&15) + 1
		shift -= s
		// The masks tell the compiler that the shifts are in range.
		e = t.nodes[e&nodeMask+uint32(k>>(shift&63))&(1<<(s&31)-1)]
	}
	if e>>30 == kindLabel {
		return uint16(e)
	}
	last := uint(e >> leafBits & 63) // < leaf6
	off := e & leafMask
	w := (*[leaf6]uint64)(t.ents[off : off+leaf6])
	x := k<<16 | 0xffff
	b := step6(w, x, 0, 8, last)
	b = step6(w, x, b, 4, last)
	b = step6(w, x, b, 2, last)
	b = step6(w, x, b, 1, last)
	return uint16(w[minU(b, last)&(leaf6-1)])
}

func step6(w *[leaf6]uint64, x uint64, b, half, last uint) uint {
	_, gt := bits.Sub64(x, w[minU(b+half, last)&(leaf6-1)], 0)
	return b + half&^-uint(gt)
}

// A bitLUT is the membership form of a lut for IPv4: the same trie over a
// partition into runs that alternate between in and out, whose leaves hold
// only the boundaries, as their low 16 bits (the bits below the top level).
// Whether an address is in is the parity of the number of boundaries at or
// before it, from the leaf's first run. Every leaf is 32 keys, one aligned
// 64-byte line, the real ones followed by copies of the last: a search
// reads one line and takes five fixed steps without clamping its reads.
//
//   - a label entry (kind 0) is 1 for a chunk inside, 0 for one outside;
//   - a leaf entry (kind 1) holds in bit 29 whether the chunk's first run is
//     in, the number of boundaries inside the chunk (1 to 32, less one, in
//     bits 24–28) and the leaf's index in keys, in lines;
//   - a node entry is a lut's.
type bitLUT struct {
	top   []uint32 // 1<<16 entries, empty for the zero bitLUT
	nodes []uint32
	keys  []uint16 // leaves of bitLeaf keys, the first at a 64-byte boundary
}

const bitLeaf = 32 // the keys of a bitLUT leaf: 64 bytes

// compileBitLUT compiles a partition of the IPv4 space into runs labelled 0
// (in) and labelNone (out), alternating.
func compileBitLUT(segs []run[a4]) (bitLUT, error) {
	b := newTrieBuilder[a4](bitLeaf + 1) // a leaf's first run starts at the chunk: no key
	var leaves [][bitLeaf]uint16
	in := func(l uint16) uint32 {
		if l == labelNone {
			return 0
		}
		return 1
	}
	b.label = in
	b.leaf = func(segs []run[a4], _ a4) uint32 {
		off := len(leaves)
		if off > leafMask {
			b.err = errTooLarge
			return 0
		}
		var w [bitLeaf]uint16
		for i := range w {
			w[i] = uint16(segs[min(i+1, len(segs)-1)].start)
		}
		leaves = append(leaves, w)
		return kindLeaf<<30 | in(segs[0].label)<<29 | uint32(len(segs)-2)<<leafBits | uint32(off)
	}
	b.build(segs)
	// One allocation, aligned: Go aligns large objects to pages, small
	// ones only to their size class.
	const line = bitLeaf * 2
	buf := make([]uint16, (len(leaves)+1)*bitLeaf)
	skip := (line - int(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))%line) % line / 2
	keys := buf[skip : skip+len(leaves)*bitLeaf]
	for i, w := range leaves {
		copy(keys[i*bitLeaf:], w[:])
	}
	return bitLUT{b.top, b.nodes, keys}, b.err
}

// contains finishes a lookup of k whose top-level entry e is not a label.
func (t *bitLUT) contains(e uint32, k a4) bool {
	for shift := uint(16); e>>30 == kindNode; {
		s := uint(e>>nodeBits&15) + 1
		shift -= s
		e = t.nodes[e&nodeMask+uint32(k>>(shift&63))&(1<<(s&31)-1)]
	}
	if e>>30 == kindLabel {
		return e == 1
	}
	off := uint(e&leafMask) * bitLeaf
	w := (*[bitLeaf]uint16)(t.keys[off : off+bitLeaf])
	x := uint32(uint16(k))
	// c: the number of keys ≤ x, padding included, by a branch-free
	// binary search over the 32 sorted keys.
	c := stepCount(w, x, 0, 16)
	c = stepCount(w, x, c, 8)
	c = stepCount(w, x, c, 4)
	c = stepCount(w, x, c, 2)
	c = stepCount(w, x, c, 1)
	_, gt := bits.Sub32(x, uint32(w[c&(bitLeaf-1)]), 0)
	c += 1 - uint(gt)
	c = minU(c, uint(e>>leafBits&31)+1) // without the padding
	return (e>>29^uint32(c))&1 == 1
}

// stepCount adds half to c if the key before c+half is ≤ x.
func stepCount(w *[bitLeaf]uint16, x uint32, c, half uint) uint {
	_, gt := bits.Sub32(x, uint32(w[(c+half-1)&(bitLeaf-1)]), 0)
	return c + half&^-uint(gt)
}
