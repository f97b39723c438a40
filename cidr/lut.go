package cidr

import (
	"errors"
	"math/bits"
	"slices"
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
			ents = appendDoubling(ents, (k&low)<<16|W(s.label))
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

// The membership forms of a compiled Set, bits4 and bits6, answer by parity:
// the set's boundaries (the first address of each range and the first after
// it) split the address space into runs that alternate between out and in,
// so an address is in when the state at the start of its chunk, flipped once
// per boundary inside the chunk at or before the address, is in. Unlike a
// lut's, their lookups take (nearly) the same steps for every address that
// leaves the top level — one node level and a leaf of one cache line for
// IPv4, two or three node levels and a leaf for all but a few IPv6
// addresses — with no branch on the shape of the data: a lut's descent
// loop exits at a depth that varies from address to address and
// mispredicts, and a mispredicted branch stops the processor from
// overlapping the cache misses of independent lookups.
//
// A leaf is a line of sorted keys, the boundaries inside its chunk
// followed by padding with the largest key, in pairs so that the padding
// never changes the parity. A chunk with an odd number of boundaries gets
// its own start as a first key, which flips the parity of every address in
// the chunk, and its start state flipped to match.

// A bits4 is the membership form of a set's IPv4 ranges: a top level
// indexed by the first 16 bits, one level of nodes indexed by as many of
// the next bits as the /16 needs (0 to 16, chosen so that every chunk has at
// most 32 boundaries), and leaves of 32 16-bit keys.
//
//   - a top entry holds a stride s (bits 27–31) and the offset of a block
//     of 1<<s nodes; a /16 without boundaries points at node 0 (out) or 1
//     (in), stride 0;
//   - a node holds the state at its chunk's start (bit 31) and the index of
//     its leaf; a chunk without boundaries has leaf 0, all padding;
//   - keys holds the leaves, the low 16 bits of each boundary, aligned to
//     64 bytes.
type bits4 struct {
	top   *[1 << 16]uint32 // nil for the zero bits4
	nodes []uint32
	keys  []uint16
}

const (
	leaf4Keys  = 32 // a bits4 leaf: 64 bytes
	leaf6Keys  = 8  // a bits6 leaf: 64 bytes
	strideBits = 27 // a bits4 top entry's offset
	strideMask = 1<<strideBits - 1
)

// boundaries returns the boundaries of a canonical range list and whether
// its first run, from address 0, is in.
func boundaries[K key[K]](rs []rng[K], max K) (bs []K, in0 bool) {
	var zero K
	bs = make([]K, 0, 2*len(rs))
	for _, r := range rs {
		if r.lo != zero {
			bs = append(bs, r.lo)
		}
		if r.hi != max {
			bs = append(bs, r.hi.succ())
		}
	}
	return bs, len(rs) > 0 && rs[0].lo == zero
}

// leafKeys fills a leaf with the n keys key(0..n-1) of the chunk starting
// at lo, padded as the comment above bits4 says, and returns the chunk's
// start state, flipped if lo was added.
func leafKeys[W uint16 | uint64](w []W, n int, key func(int) W, lo W, in bool) bool {
	i := 0
	if n%2 == 1 {
		w[0] = lo
		i, in = 1, !in
	}
	for j := range n {
		w[i+j] = key(j)
	}
	for j := i + n; j < len(w); j++ {
		w[j] = ^W(0)
	}
	return in
}

// alignedLines returns a slice of n elements whose first is at a 64-byte
// boundary. (Go aligns large objects to pages, small ones only to their
// size class.)
func alignedLines[W uint16 | uint64](n int) []W {
	var zero W
	size := int(unsafe.Sizeof(zero))
	buf := make([]W, n+64/size)
	skip := (64 - int(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))%64) % 64 / size
	return buf[skip : skip+n : skip+n]
}

func b2u32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// compileBits4 compiles a canonical IPv4 range list, with top as its top
// level.
func compileBits4(rs []r4, top *[1 << 16]uint32) (bits4, error) {
	bs, in0 := boundaries(rs, max4)
	t := bits4{top: top, nodes: []uint32{0, 1 << 31}}
	var leaves [][leaf4Keys]uint16
	leaves = append(leaves, [leaf4Keys]uint16{}) // leaf 0, all padding
	for i := range leaves[0] {
		leaves[0][i] = 0xffff
	}
	j := 0 // the boundaries up to the current chunk's start
	for c := range t.top {
		lo := a4(c) << 16
		for j < len(bs) && bs[j] <= lo {
			j++
		}
		k := j
		for k < len(bs) && bs[k] <= lo|0xffff {
			k++
		}
		in := in0 != (j%2 == 1)
		inside := bs[j:k]
		if len(inside) == 0 {
			t.top[c] = b2u32(in)
			continue
		}
		s := stride4(inside)
		off := len(t.nodes)
		if off+1<<s > strideMask+1 || int64(len(leaves))+1<<s > 1<<31 {
			return bits4{}, errTooLarge
		}
		t.top[c] = uint32(s)<<strideBits | uint32(off)
		shift := uint(16 - s)
		a := 0
		for sub := range 1 << s {
			slo := lo | a4(sub)<<shift
			shi := slo | (1<<shift - 1)
			// inside[:a] are at or before slo, inside[a:b] inside the chunk.
			for a < len(inside) && inside[a] <= slo {
				a++
			}
			b := a
			for b < len(inside) && inside[b] <= shi {
				b++
			}
			sin := in != (a%2 == 1)
			if a == b {
				t.nodes = append(t.nodes, b2u32(sin)<<31)
				continue
			}
			var w [leaf4Keys]uint16
			sin = leafKeys(w[:], b-a, func(i int) uint16 { return uint16(inside[a+i]) }, uint16(slo), sin)
			t.nodes = append(t.nodes, b2u32(sin)<<31|uint32(len(leaves)))
			leaves = append(leaves, w)
		}
	}
	t.keys = alignedLines[uint16](len(leaves) * leaf4Keys)
	for i, w := range leaves {
		copy(t.keys[i*leaf4Keys:], w[:])
	}
	return t, nil
}

// stride4 returns the fewest bits below a /16 that divide it into chunks of
// at most leaf4Keys boundaries each (a chunk's own start is not one of
// them); bs are the boundaries inside the /16, sorted.
func stride4(bs []a4) int {
	for s := 0; ; s++ {
		shift := uint(16 - s)
		worst, n, cur := 0, 0, a4(0)
		for _, b := range bs {
			if b&(1<<shift-1) == 0 {
				continue // the start of a chunk
			}
			if c := b >> shift; c != cur || n == 0 {
				cur, n = c, 0
			}
			n++
			worst = max(worst, n)
		}
		if worst <= leaf4Keys {
			return s
		}
	}
}

// contains reports whether k is in. Set.Contains has the same code written
// out.
func (t *bits4) contains(k a4) bool {
	e := t.top[k>>16]
	if e < 2 {
		return e == 1
	}
	n := t.nodes[e&strideMask+(uint32(uint16(k))>>((16-e>>strideBits)&31))]
	off := uint(n&(1<<31-1)) * leaf4Keys
	w := (*[leaf4Keys]uint16)(t.keys[off : off+leaf4Keys])
	x := uint(uint16(k)) + 1
	// c: the number of keys ≤ k (below x), by a branch-free binary search.
	c := stepBit(w, x, 0, 4)
	c = stepBit(w, x, c, 3)
	c = stepBit(w, x, c, 2)
	c = stepBit(w, x, c, 1)
	c = stepBit(w, x, c, 0)
	c += (uint(w[c&(leaf4Keys-1)]) - x) >> signBit
	return (n>>31^uint32(c))&1 == 1
}

// signBit shifts a uint's sign bit down to bit 0: the branch-free
// comparisons below take the sign of a difference of small numbers, on
// 64- and 32-bit platforms alike.
const signBit = bits.UintSize - 1

// stepBit adds 1<<b to c if the key before c+1<<b is below x. Keys and x
// are at most 17 bits: the sign of their difference as a uint is the
// comparison.
func stepBit(w *[leaf4Keys]uint16, x, c, b uint) uint {
	return c | (uint(w[(c|(1<<b-1))&(leaf4Keys-1)])-x)>>signBit<<b
}

// A bits6 is the membership form of a set's IPv6 ranges, indexed on the
// high 64 bits of the address: a top level indexed by the first 16 bits,
// two levels of nodes indexed by as many of the next bits as each chunk
// needs (1 to 16 each), and leaves of 8 keys, the high 64 bits of the
// boundaries. A chunk too dense for the two levels takes a third, without
// a branch, and more behind a branch that only its addresses take. A chunk that holds a /64 split in
// its low 64 bits has a wide leaf instead, of at most 8 whole 128-bit
// keys, counted the same way. ::/16, where IPv4, IPv4-mapped and invalid
// addresses fall (As16 gives them zeros there), is marked slow: a lookup
// there searches the set's ranges, as does one in a /64 of more than 8
// boundaries (1% of the in-table stream of the benchmarks).
//
// Every level below the top is one array, nodes, of entries of one form,
// so that a level costs a load, two shifts and an add, and the lookup
// keeps the address's remaining bits at the top of a register:
//
//   - a top entry is 0 (out), 1 (in), 2 (slow) for a /16 of one state, or
//     a node;
//   - a node entry holds 64 less its stride s (1 to 16) in bits 26–31,
//     so that shifting the remaining bits right by it leaves the next s,
//     and the offset of its block of 1<<s entries in nodes. Two levels of
//     nodes are always taken: a chunk of one state at the first is a node
//     over a block of two equal terminals (nodes[2:4] out, nodes[4:6] in);
//   - a terminal entry has zeros in bits 26–31, its chunk's start state in
//     bit 25, and in bits 0–23 the index of its leaf (leaf 0, all padding,
//     for a chunk without boundaries) or, with bit 24 set, of its wide
//     leaf (0 for slow).
type bits6 struct {
	top   *[1 << 16]uint32 // nil for the zero bits6
	nodes []uint32
	keys  []uint64
	wide  []a6
}

const (
	top6Slow  = 2
	node6At   = 26 // a node entry's 64-s
	node6Mask = 1<<node6At - 1
	term6In   = 1 << 25
	term6Wide = 1 << 24
	term6Leaf = 1<<24 - 1
	leaf6Wide = 8 // a wide leaf: 128 bytes
	nodes6Out = 2 // the block of two out terminals
	nodes6In  = 4 // and of two in terminals
)

// node6 returns the node entry of a block of 1<<s entries at off.
func node6(s int, off int) uint32 { return uint32(64-s)<<node6At | uint32(off) }

// boundaries64 returns the boundaries of the /64s wholly inside a canonical
// IPv6 range list, whether the /64 0 is in, and the /64s the list splits
// (which the boundaries count as out).
func boundaries64(rs []r6) (bs []uint64, in0 bool, split []uint64) {
	const max = ^uint64(0)
	var full [][2]uint64
	addSplit := func(h uint64) {
		if n := len(split); n == 0 || split[n-1] != h {
			split = append(split, h)
		}
	}
	for _, r := range rs {
		a, b := r.lo.hi, r.hi.hi
		okA, okB := true, true
		if r.lo.lo != 0 {
			addSplit(a)
			okA = a != max
			a++
		}
		if r.hi.lo != max {
			addSplit(b)
			okB = b != 0
			b--
		}
		if !okA || !okB || a > b {
			continue
		}
		if n := len(full); n > 0 && full[n-1][1]+1 == a {
			full[n-1][1] = b
			continue
		}
		full = append(full, [2]uint64{a, b})
	}
	for _, f := range full {
		if f[0] != 0 {
			bs = append(bs, f[0])
		}
		if f[1] != max {
			bs = append(bs, f[1]+1)
		}
	}
	return bs, len(full) > 0 && full[0][0] == 0, split
}

// chunk6 is a chunk of the high 64 bits being compiled: its first value,
// its width in bits, the boundaries inside it (after lo) and the split /64s
// in it, and its start state.
type chunk6 struct {
	lo    uint64
	width uint
	bs    []uint64
	split []uint64
	in    bool
}

// subchunks calls f for each of the 1<<s chunks of c.
func (c chunk6) subchunks(s uint, f func(sub int, d chunk6)) {
	w := c.width - s
	in, a, p := c.in, 0, 0
	for sub := range 1 << s {
		lo := c.lo | uint64(sub)<<w
		hi := lo | (1<<w - 1)
		for a < len(c.bs) && c.bs[a] <= lo {
			a++
			in = !in
		}
		b := a
		for b < len(c.bs) && c.bs[b] <= hi {
			b++
		}
		for p < len(c.split) && c.split[p] < lo {
			p++
		}
		q := p
		for q < len(c.split) && c.split[q] <= hi {
			q++
		}
		f(sub, chunk6{lo, w, c.bs[a:b], c.split[p:q], in})
	}
}

// need returns the fewest bits, at most 16, that divide c into chunks of at
// most leaf6Keys boundaries each, or -1.
func (c chunk6) need() int {
	for s := uint(0); s <= min(16, c.width); s++ {
		w := c.width - s
		worst, n, cur := 0, 0, uint64(0)
		for _, b := range c.bs {
			if b&(1<<w-1) == 0 {
				continue
			}
			if x := b >> w; x != cur || n == 0 {
				cur, n = x, 0
			}
			n++
			worst = max(worst, n)
		}
		if worst <= leaf6Keys {
			return int(s)
		}
	}
	return -1
}

// strideBudget is the most node entries per boundary a node may take to
// send every chunk to a leaf; topBudget the same for the nodes right below
// a /16. For the shared country data's six countries, strides of 2 and 4
// entries per boundary make the IPv6 nodes 2.9 MiB, and 36% of the
// lookups in the table take a level more than the fixed two, 13% more than
// three (2 and 2: 2.2 MiB, 50% and 14%; 4 and 4: 3.5 MiB, 34% and 13%).
// The levels below are where the keys cluster (runs of /64s), which larger
// strides do not separate.
const (
	strideBudget = 2
	topBudget    = 4
)

// stride returns the stride of a node over c: the fewest bits that divide c
// into chunks of at most leaf6Keys boundaries each, if that costs at most
// budget entries per boundary; else that many entries, and some chunks
// take another level.
func (c chunk6) stride(budget int) int {
	most := min(bits.Len(uint(budget*(len(c.bs)+len(c.split)))), 16, int(c.width))
	if s := c.need(); s >= 0 && s <= most {
		return s
	}
	return most
}

// compileBits6 compiles a canonical IPv6 range list, with top as its top
// level.
func compileBits6(rs []r6, top *[1 << 16]uint32) (bits6, error) {
	bs, in0, split := boundaries64(rs)
	all, all0 := boundaries(rs, max6) // for wide leaves
	t := bits6{top: top, nodes: []uint32{0, 0, 0, 0, term6In, term6In}}
	leaves := [][leaf6Keys]uint64{{}}
	for i := range leaves[0] {
		leaves[0][i] = ^uint64(0)
	}
	wides := [][leaf6Wide]a6{{}} // wide leaf 0: none, slow
	var err error
	// block appends a block of 1<<s entries, entry(e) for each chunk e of
	// d, and returns its node entry.
	block := func(d chunk6, s int, entry func(chunk6) uint32) uint32 {
		off := len(t.nodes)
		if off+1<<s > node6Mask+1 {
			err = errTooLarge
			return 0
		}
		t.nodes = append(t.nodes, make([]uint32, 1<<s)...)
		d.subchunks(uint(s), func(sub int, e chunk6) {
			x := entry(e) // before indexing t.nodes, which entry may grow
			t.nodes[off+sub] = x
		})
		return node6(s, off)
	}
	// low returns the entry of a chunk at the second level or below.
	var low func(d chunk6) uint32
	low = func(d chunk6) uint32 {
		if len(d.split) > 0 {
			// The whole boundaries in the chunk, after its start.
			start := a6{d.lo, 0}
			i, _ := slices.BinarySearchFunc(all, start, cmpA6)
			if i < len(all) && all[i] == start {
				i++
			}
			j := i
			for j < len(all) && all[j].hi <= d.lo|(1<<d.width-1) {
				j++
			}
			if j-i <= leaf6Wide {
				if len(wides) > term6Leaf {
					err = errTooLarge
					return 0
				}
				var w [leaf6Wide]a6
				in := leafKeys6(w[:], all[i:j], start, all0 != (i%2 == 1))
				wides = append(wides, w)
				return b2u32(in)*term6In | term6Wide | uint32(len(wides)-1)
			}
			if d.width == 0 {
				return term6Wide // slow
			}
			// Isolate the split /64s in as few levels as memory allows.
			s := max(d.stride(strideBudget), min(bits.Len(uint(strideBudget*(j-i))), 16, int(d.width)), 1)
			return block(d, s, low)
		}
		switch {
		case len(d.bs) == 0:
			return b2u32(d.in) * term6In
		case len(d.bs) > leaf6Keys:
			return block(d, max(d.stride(strideBudget), 1), low)
		}
		if len(leaves) > term6Leaf {
			err = errTooLarge
			return 0
		}
		var w [leaf6Keys]uint64
		in := leafKeys(w[:], len(d.bs), func(i int) uint64 { return d.bs[i] }, d.lo, d.in)
		leaves = append(leaves, w)
		return b2u32(in)*term6In | uint32(len(leaves)-1)
	}
	// mid returns the entry of a chunk at the first level: always a node.
	mid := func(e chunk6) uint32 {
		if len(e.split) == 0 && len(e.bs) == 0 {
			return node6(1, nodes6Out+int(b2u32(e.in))*(nodes6In-nodes6Out))
		}
		return block(e, max(e.stride(strideBudget), 1), low)
	}
	root := chunk6{0, 64, bs, split, in0}
	root.subchunks(16, func(c int, d chunk6) {
		switch {
		case c == 0:
			t.top[c] = top6Slow
		case len(d.split) == 0 && len(d.bs) == 0:
			t.top[c] = b2u32(d.in)
		default:
			t.top[c] = block(d, max(d.stride(topBudget), 1), mid)
		}
	})
	if err != nil {
		return bits6{}, err
	}
	t.keys = alignedLines[uint64](len(leaves) * leaf6Keys)
	for i, w := range leaves {
		copy(t.keys[i*leaf6Keys:], w[:])
	}
	t.wide = make([]a6, 0, len(wides)*leaf6Wide)
	for _, w := range wides {
		t.wide = append(t.wide, w[:]...)
	}
	return t, nil
}

func cmpA6(x, y a6) int {
	switch {
	case x == y:
		return 0
	case x.less(y):
		return -1
	}
	return 1
}

// leafKeys6 is leafKeys for a wide leaf.
func leafKeys6(w []a6, keys []a6, lo a6, in bool) bool {
	i := 0
	if len(keys)%2 == 1 {
		w[0] = lo
		i, in = 1, !in
	}
	copy(w[i:], keys)
	for j := i + len(keys); j < len(w); j++ {
		w[j] = max6
	}
	return in
}

// step6Count adds half to c if the key before c+half is ≤ x.
func step6Count(w *[leaf6Keys]uint64, x uint64, c, half uint) uint {
	_, gt := bits.Sub64(x, w[(c+half-1)&(leaf6Keys-1)], 0)
	return c + half&^-uint(gt)
}

// containsWide searches the wide leaf of the low entry n.
func (t *bits6) containsWide(n uint32, k a6) (in, slow bool) {
	i := uint(n & term6Leaf)
	if i == 0 {
		return false, true
	}
	l := (*[leaf6Wide]a6)(t.wide[i*leaf6Wide : (i+1)*leaf6Wide])
	c := uint(0)
	for _, x := range l {
		_, b := bits.Sub64(k.lo, x.lo, 0)
		_, b = bits.Sub64(k.hi, x.hi, b) // 1 if k < x
		c += 1 - uint(b)
	}
	return (n>>25^uint32(c))&1 == 1, false
}
