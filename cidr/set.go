package cidr

import (
	"iter"
	"math/big"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/geosteer/geosteer/internal/addrword"
	"go4.org/netipx"
)

// rng is an inclusive range of addresses, lo ≤ hi.
type rng[K key[K]] struct{ lo, hi K }

type r4 = rng[a4]
type r6 = rng[a6]

// A Set is an immutable set of IPv4 and IPv6 addresses.
//
// It is kept as two lists of inclusive address ranges, one per family, each
// sorted, non-overlapping and non-adjacent: the canonical form, so two Sets
// are equal exactly when their lists are. The zero Set is empty and ready to
// use. A Set is a small value; copies share the (never modified) lists, so
// Sets may be passed by value and used from many goroutines.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are held as the IPv4 addresses
// they map: a Builder converts input inside ::ffff:0:0/96 to IPv4, and
// Contains unmaps its argument. A prefix that merely covers ::ffff:0:0/96
// (such as ::/0), or a range that crosses its edge, is kept as IPv6 and
// matches no IPv4 address.
//
// Build Sets with a Builder, a prefix-list parser ([ParseList]), or the set
// algebra.
type Set struct {
	v4 []r4
	v6 []r6

	tab *setTable // the lookup table of a compiled Set, or nil; see Compile
}

// Contains reports whether the set holds addr: a table lookup for a set
// returned by [Set.Compile] and its copies, a binary search over the ranges
// otherwise.
func (s Set) Contains(addr netip.Addr) bool {
	// Small enough to be inlined, so that the Set, seven words, is not
	// passed by value: with the three words of addr it would not fit the
	// argument registers. (Passing the table and the ranges instead, so
	// that the caller need not copy the Set to take its address, measured
	// slower: the caller reloads them all.) The lookup itself cannot be
	// inlined: a call to any slow path costs 57 of the inliner's budget of
	// 80, and the test for a Set not compiled and the first level's load
	// take more than the rest.
	return s.contains(addr)
}

// contains is nosplit, which drops the stack check from the fast paths
// (as in steer's Router.find); the calls it makes check the stack
// themselves, which the linker verifies.
//
//go:nosplit
func (s *Set) contains(addr netip.Addr) bool {
	t := s.tab
	if t == nil {
		return search(s.v4, s.v6, addr)
	}
	// An IPv6 address whose /16 has one state (most of the IPv6 space,
	// which is mostly empty) is answered from one byte. IPv4, IPv4-mapped
	// and invalid addresses meet ::/16, marked slow, and go on.
	hi := addrword.Hi64(addr)
	if e := t.first6[hi>>48]; e < top6Slow {
		return e == 1
	}
	if addr.Is4() {
		// The lookup of a bits4, written out here to save a call.
		k := key4(addr)
		e := t.top4[k>>16]
		if e < 2 {
			// A /16 of one state: most of a uniform stream.
			return e == 1
		}
		n := t.v4.nodes[e&strideMask+(uint32(uint16(k))>>((16-e>>strideBits)&31))]
		off := uint(n&(1<<31-1)) * leaf4Keys
		w := (*[leaf4Keys]uint16)(t.v4.keys[off : off+leaf4Keys])
		x := uint(uint16(k)) + 1
		c := stepBit(w, x, 0, 4)
		c = stepBit(w, x, c, 3)
		c = stepBit(w, x, c, 2)
		c = stepBit(w, x, c, 1)
		c = stepBit(w, x, c, 0)
		c += (uint(w[c&(leaf4Keys-1)]) - x) >> signBit
		return (n>>31^uint32(c))&1 == 1
	}
	e := t.top6[hi>>48]
	if e == top6Slow {
		return t.containsZero(addr)
	}
	// The descent of the bits6, written out here: a call would spill
	// addr to the stack for the wide leaves' path. Three loads, the same
	// for every address but in the densest chunks, then the leaf's
	// search.
	nodes := t.v6.nodes
	x := hi << 16 // the bits not yet taken, at the top
	// A node's 64-s shifts x right to its next s bits; -(64-s)&63 = s
	// shifts them out.
	q := e >> node6At
	m := nodes[e&node6Mask+uint32(x>>(q&63))]
	x <<= -q & 63
	q = m >> node6At
	n := nodes[m&node6Mask+uint32(x>>(q&63))]
	x <<= -q & 63
	// One more level, without a branch: about half of the lookups in
	// the shared country data need it, so that a branch would mispredict.
	// A terminal reads nodes[0] instead, and keeps n.
	q = n >> node6At
	node := uint32(-int32((q + 63) >> 6)) // all ones for a node (q ≠ 0)
	n2 := nodes[(n&node6Mask+uint32(x>>(q&63)))&node]
	x <<= -q & 63
	n ^= (n ^ n2) & node
	for n>>node6At != 0 {
		// A chunk too dense for three levels: rare, so that this
		// branch is predicted.
		q = n >> node6At
		n = nodes[n&node6Mask+uint32(x>>(q&63))]
		x <<= -q & 63
	}
	if n&term6Wide != 0 {
		return t.containsWide(n, addr)
	}
	off := uint(n&term6Leaf) * leaf6Keys
	l := (*[leaf6Keys]uint64)(t.v6.keys[off : off+leaf6Keys])
	c := step6Count(l, hi, 0, 4)
	c = step6Count(l, hi, c, 2)
	c = step6Count(l, hi, c, 1)
	_, gt := bits.Sub64(hi, l[c&(leaf6Keys-1)], 0)
	c += 1 - uint(gt)
	return (n>>25^uint32(c))&1 == 1
}

// search is Contains for a set not compiled: a binary search.
func search(v4 []r4, v6 []r6, addr netip.Addr) bool {
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is4() {
		return search4(v4, key4(addr))
	}
	return addr.Is6() && search6(v6, key6(addr))
}

// search4 reports whether a range of rs holds k.
func search4(rs []r4, k a4) bool {
	// Find the first range with hi ≥ k.
	i, j := 0, len(rs)
	for i < j {
		h := int(uint(i+j) >> 1)
		if rs[h].hi < k {
			i = h + 1
		} else {
			j = h
		}
	}
	return i < len(rs) && rs[i].lo <= k
}

// search6 reports whether a range of rs holds k.
func search6(rs []r6, k a6) bool {
	i, j := 0, len(rs)
	for i < j {
		h := int(uint(i+j) >> 1)
		if rs[h].hi.less(k) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i < len(rs) && !k.less(rs[i].lo)
}

// ContainsPrefix reports whether every address of p is in the set.
func (s Set) ContainsPrefix(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	var b Builder
	b.AddPrefix(p)
	q, _ := b.Set()
	return s.Intersect(q).Equal(q)
}

// IsEmpty reports whether the set holds no address.
func (s Set) IsEmpty() bool { return len(s.v4) == 0 && len(s.v6) == 0 }

// IPv4 returns the IPv4 part of the set.
func (s Set) IPv4() Set { return Set{v4: s.v4} }

// IPv6 returns the IPv6 part of the set.
func (s Set) IPv6() Set { return Set{v6: s.v6} }

// Equal reports whether s and t hold the same addresses.
func (s Set) Equal(t Set) bool {
	return equalRanges(s.v4, t.v4) && equalRanges(s.v6, t.v6)
}

func equalRanges[K key[K]](a, b []rng[K]) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NumRanges returns the number of maximal ranges: the fewest entries a
// target that accepts address ranges (RouterOS IPv4 address lists, nftables
// interval sets) needs for the set.
func (s Set) NumRanges() int { return len(s.v4) + len(s.v6) }

// NumPrefixes returns the length of the minimal exact CIDR list, the fewest
// entries a target that accepts only prefixes needs for the set.
func (s Set) NumPrefixes() int {
	n := 0
	for _, r := range s.v4 {
		n += countPrefixes4(r.lo, r.hi)
	}
	for _, r := range s.v6 {
		n += countPrefixes6(r.lo, r.hi)
	}
	return n
}

// NumAddrs4 returns the number of IPv4 addresses in the set.
func (s Set) NumAddrs4() uint64 {
	var n uint64
	for _, r := range s.v4 {
		n += uint64(r.hi-r.lo) + 1
	}
	return n
}

// NumAddrs6 returns the number of IPv6 addresses in the set.
func (s Set) NumAddrs6() *big.Int {
	n, t, one := new(big.Int), new(big.Int), big.NewInt(1)
	for _, r := range s.v6 {
		d := r.hi.sub(r.lo)
		t.SetUint64(d.hi)
		t.Lsh(t, 64)
		t.Or(t, new(big.Int).SetUint64(d.lo))
		n.Add(n, t)
		n.Add(n, one)
	}
	return n
}

// Ranges returns the set's maximal ranges, IPv4 first, in ascending order.
func (s Set) Ranges() []netipx.IPRange {
	out := make([]netipx.IPRange, 0, s.NumRanges())
	for r := range s.AllRanges() {
		out = append(out, r)
	}
	return out
}

// AllRanges returns an iterator over the set's maximal ranges, IPv4 first,
// in ascending order.
func (s Set) AllRanges() iter.Seq[netipx.IPRange] {
	return func(yield func(netipx.IPRange) bool) {
		for _, r := range s.v4 {
			if !yield(netipx.IPRangeFrom(r.lo.addr(), r.hi.addr())) {
				return
			}
		}
		for _, r := range s.v6 {
			if !yield(netipx.IPRangeFrom(r.lo.addr(), r.hi.addr())) {
				return
			}
		}
	}
}

// Prefixes returns the minimal exact CIDR list of the set: IPv4 first, in
// ascending order, no prefix overlapping or mergeable with another.
func (s Set) Prefixes() []netip.Prefix {
	return s.AppendPrefixes(make([]netip.Prefix, 0, s.NumPrefixes()))
}

// AppendPrefixes appends the minimal exact CIDR list of the set to dst.
func (s Set) AppendPrefixes(dst []netip.Prefix) []netip.Prefix {
	for _, r := range s.v4 {
		dst = appendPrefixes4(dst, r.lo, r.hi)
	}
	for _, r := range s.v6 {
		dst = appendPrefixes6(dst, r.lo, r.hi)
	}
	return dst
}

// AllPrefixes returns an iterator over the minimal exact CIDR list.
func (s Set) AllPrefixes() iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		var buf [128]netip.Prefix
		for _, r := range s.v4 {
			for _, p := range appendPrefixes4(buf[:0], r.lo, r.hi) {
				if !yield(p) {
					return
				}
			}
		}
		for _, r := range s.v6 {
			for _, p := range appendPrefixes6(buf[:0], r.lo, r.hi) {
				if !yield(p) {
					return
				}
			}
		}
	}
}

// String returns the set's ranges as a comma-separated list, for debugging.
func (s Set) String() string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for r := range s.AllRanges() {
		if !first {
			b.WriteString(", ")
		}
		first = false
		if r.From() == r.To() {
			b.WriteString(r.From().String())
		} else if p, ok := r.Prefix(); ok {
			b.WriteString(p.String())
		} else {
			b.WriteString(r.String())
		}
	}
	b.WriteByte('}')
	return b.String()
}

// Union returns the addresses in s or t.
func (s Set) Union(t Set) Set {
	return Set{v4: union(s.v4, t.v4), v6: union(s.v6, t.v6)}
}

// Intersect returns the addresses in both s and t.
func (s Set) Intersect(t Set) Set {
	return Set{v4: intersect(s.v4, t.v4), v6: intersect(s.v6, t.v6)}
}

// Difference returns the addresses in s but not in t.
func (s Set) Difference(t Set) Set {
	return Set{v4: difference(s.v4, t.v4), v6: difference(s.v6, t.v6)}
}

// Complement returns, per family, the addresses not in s: the IPv4 addresses
// outside s's IPv4 part and the IPv6 addresses outside its IPv6 part. Use
// [Set.IPv4] or [Set.IPv6] on the result to keep one family.
func (s Set) Complement() Set {
	return Set{v4: complement(s.v4, 0, max4), v6: complement(s.v6, a6{}, max6)}
}

// ranges in canonical form: a tidy merge.

func union[K key[K]](a, b []rng[K]) []rng[K] {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]rng[K], 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var r rng[K]
		if j == len(b) || (i < len(a) && a[i].lo.less(b[j].lo)) {
			r = a[i]
			i++
		} else {
			r = b[j]
			j++
		}
		out = appendMerge(out, r)
	}
	return out
}

// appendMerge appends r, which must not start before the last range, merging
// it into the last range if they overlap or touch.
func appendMerge[K key[K]](out []rng[K], r rng[K]) []rng[K] {
	if n := len(out); n > 0 {
		last := &out[n-1]
		var zero K
		if !last.hi.less(r.lo) || last.hi.succ() == r.lo && last.hi.succ() != zero {
			if last.hi.less(r.hi) {
				last.hi = r.hi
			}
			return out
		}
	}
	return append(out, r)
}

func intersect[K key[K]](a, b []rng[K]) []rng[K] {
	var out []rng[K]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo, hi := a[i].lo, a[i].hi
		if lo.less(b[j].lo) {
			lo = b[j].lo
		}
		if b[j].hi.less(hi) {
			hi = b[j].hi
		}
		if !hi.less(lo) {
			out = append(out, rng[K]{lo, hi})
		}
		if a[i].hi.less(b[j].hi) {
			i++
		} else {
			j++
		}
	}
	return out
}

func difference[K key[K]](a, b []rng[K]) []rng[K] {
	if len(a) == 0 || len(b) == 0 {
		return a
	}
	var out []rng[K]
	j := 0
	for _, r := range a {
		lo := r.lo
		done := false
		for j < len(b) && b[j].hi.less(lo) {
			j++
		}
		for k := j; k < len(b) && !r.hi.less(b[k].lo); k++ {
			if lo.less(b[k].lo) {
				out = append(out, rng[K]{lo, b[k].lo.pred()})
			}
			if !b[k].hi.less(r.hi) {
				done = true
				break
			}
			lo = b[k].hi.succ()
		}
		if !done {
			out = append(out, rng[K]{lo, r.hi})
		}
	}
	return out
}

func complement[K key[K]](a []rng[K], min, max K) []rng[K] {
	var out []rng[K]
	next := min
	for _, r := range a {
		if next.less(r.lo) {
			out = append(out, rng[K]{next, r.lo.pred()})
		}
		if r.hi == max {
			return out
		}
		next = r.hi.succ()
	}
	return append(out, rng[K]{next, max})
}
