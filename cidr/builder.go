package cidr

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"go4.org/netipx"
)

// A Builder builds a Set from additions and removals of addresses, prefixes,
// ranges and other sets, in any order and with any overlap. Operations apply
// in the order made: a removal takes away only what was added before it.
//
// The zero Builder is empty and ready to use. Invalid input (an invalid
// address, prefix or range) is recorded and reported once, by [Builder.Set];
// the rest of the input is still applied. A Builder must not be copied after
// first use and is not safe for concurrent use.
type Builder struct {
	set Set // everything up to the pending batch

	// The pending batch: additions or removals (never both), unsorted.
	add4, rem4 batch[a4]
	add6, rem6 batch[a6]

	errs []error
}

// Add adds a single address.
func (b *Builder) Add(a netip.Addr) { b.AddRange(netipx.IPRangeFrom(a, a)) }

// AddPrefix adds every address of p. Host bits are ignored.
func (b *Builder) AddPrefix(p netip.Prefix) { b.prefix(p, true) }

// AddRange adds every address of r.
func (b *Builder) AddRange(r netipx.IPRange) { b.rangeOp(r, true) }

// AddSet adds every address of s.
func (b *Builder) AddSet(s Set) {
	b.switchTo(true)
	b.add4.pushAll(s.v4)
	b.add6.pushAll(s.v6)
}

// AddIPSet adds every address of a netipx.IPSet.
func (b *Builder) AddIPSet(s *netipx.IPSet) {
	for _, r := range s.Ranges() {
		b.AddRange(r)
	}
}

// Remove removes a single address.
func (b *Builder) Remove(a netip.Addr) { b.RemoveRange(netipx.IPRangeFrom(a, a)) }

// RemovePrefix removes every address of p. Host bits are ignored.
func (b *Builder) RemovePrefix(p netip.Prefix) { b.prefix(p, false) }

// RemoveRange removes every address of r.
func (b *Builder) RemoveRange(r netipx.IPRange) { b.rangeOp(r, false) }

// RemoveSet removes every address of s.
func (b *Builder) RemoveSet(s Set) {
	b.switchTo(false)
	b.rem4.pushAll(s.v4)
	b.rem6.pushAll(s.v6)
}

// Set returns the set built so far and, joined, the errors of every invalid
// input seen (each invalid input was skipped). The Builder stays usable.
func (b *Builder) Set() (Set, error) {
	b.flush()
	return b.set, errors.Join(b.errs...)
}

func (b *Builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("cidr: "+format, args...))
}

// switchTo makes the pending batch hold additions (add) or removals.
func (b *Builder) switchTo(add bool) {
	if add && !(b.rem4.empty() && b.rem6.empty()) || !add && !(b.add4.empty() && b.add6.empty()) {
		b.flush()
	}
}

func (b *Builder) flush() {
	if !b.add4.empty() {
		b.set.v4 = union(b.set.v4, normalize4(b.add4.take()))
	}
	if !b.add6.empty() {
		b.set.v6 = union(b.set.v6, normalize6(b.add6.take()))
	}
	if !b.rem4.empty() {
		b.set.v4 = difference(b.set.v4, normalize4(b.rem4.take()))
	}
	if !b.rem6.empty() {
		b.set.v6 = difference(b.set.v6, normalize6(b.rem6.take()))
	}
}

func (b *Builder) prefix(p netip.Prefix, add bool) {
	if !p.IsValid() {
		b.errorf("invalid prefix %v", p)
		return
	}
	a, n := p.Addr(), p.Bits()
	if a.Is4In6() && n >= 96 {
		a, n = a.Unmap(), n-96
	}
	b.switchTo(add)
	if a.Is4() {
		r := prefixRange4(from4(a), n)
		if add {
			b.add4.push(r)
		} else {
			b.rem4.push(r)
		}
		return
	}
	r := prefixRange6(from6(a), n)
	if add {
		b.add6.push(r)
	} else {
		b.rem6.push(r)
	}
}

func (b *Builder) rangeOp(r netipx.IPRange, add bool) {
	lo, hi := r.From(), r.To()
	// The common case first, without netipx's validation and the zone and
	// mapping checks below: a loader adding half a million ranges spends
	// most of its time here.
	if lo.Is4() && hi.Is4() {
		if r := (r4{from4(lo), from4(hi)}); r.lo <= r.hi {
			b.switchTo(add)
			if add {
				b.add4.push(r)
			} else {
				b.rem4.push(r)
			}
			return
		}
	}
	if lo.Is6() && hi.Is6() && !lo.Is4In6() && !hi.Is4In6() && lo.Zone() == "" && hi.Zone() == "" {
		if r := (r6{from6(lo), from6(hi)}); !r.hi.less(r.lo) {
			b.switchTo(add)
			if add {
				b.add6.push(r)
			} else {
				b.rem6.push(r)
			}
			return
		}
	}
	if !r.IsValid() {
		// netipx rejects mixed-family ranges, but a mapped bound paired with
		// an IPv4 one is fine for us once both are unmapped.
		if lo.IsValid() && hi.IsValid() && lo.Unmap().Is4() && hi.Unmap().Is4() && !hi.Unmap().Less(lo.Unmap()) {
			lo, hi = lo.Unmap(), hi.Unmap()
		} else {
			b.errorf("invalid range %v-%v", lo, hi)
			return
		}
	}
	lo, hi = lo.WithZone(""), hi.WithZone("")
	b.switchTo(add)
	// Only a range wholly inside ::ffff:0:0/96 is IPv4; see Set.
	if lo.Is4In6() && hi.Is4In6() {
		lo, hi = lo.Unmap(), hi.Unmap()
	}
	if lo.Is4() {
		r := r4{from4(lo), from4(hi)}
		if add {
			b.add4.push(r)
		} else {
			b.rem4.push(r)
		}
		return
	}
	r6 := r6{from6(lo), from6(hi)}
	if add {
		b.add6.push(r6)
	} else {
		b.rem6.push(r6)
	}
}

// normalize4 sorts rs in place and merges it into canonical form, reusing
// its storage.
func normalize4(rs []r4) []r4 {
	if !slices.IsSortedFunc(rs, func(x, y r4) int { return int64cmp(int64(x.lo), int64(y.lo)) }) {
		radixSort4(rs)
	}
	out := rs[:0]
	for _, r := range rs {
		// Written out for IPv4: the generic appendMerge calls a4's methods
		// through a dictionary, which costs a third of this loop.
		if n := len(out); n > 0 && uint64(r.lo) <= uint64(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return shrink(out)
}

func normalize6(rs []r6) []r6 {
	if !slices.IsSortedFunc(rs, cmp6) {
		slices.SortFunc(rs, cmp6)
	}
	return shrink(mergeSorted(rs))
}

// shrink returns rs in storage of its own size when merging left most of
// the input's storage unused: a Set lives long, and the list it was built
// from (say 193,000 IPv6 prefixes merging to 46,000 ranges) should not.
func shrink[K key[K]](rs []rng[K]) []rng[K] {
	if cap(rs)-len(rs) > len(rs)/4+64 {
		return slices.Clone(rs)
	}
	return rs
}

func cmp6(x, y r6) int {
	switch {
	case x.lo.less(y.lo):
		return -1
	case y.lo.less(x.lo):
		return 1
	}
	return 0
}

func int64cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mergeSorted merges overlapping and adjacent ranges of rs, sorted by lo, in
// place.
func mergeSorted[K key[K]](rs []rng[K]) []rng[K] {
	out := rs[:0]
	for _, r := range rs {
		out = appendMerge(out, r)
	}
	return out
}

// radixSort4 sorts by lo with an LSD radix sort in three passes of 11, 11
// and 10 bits: linear time and no comparisons, where a comparison sort of
// half a million ranges spends most of the aggregation time.
func radixSort4(rs []r4) {
	if len(rs) < 256 {
		slices.SortFunc(rs, func(x, y r4) int { return int64cmp(int64(x.lo), int64(y.lo)) })
		return
	}
	tmp := make([]r4, len(rs))
	src, dst := rs, tmp
	for _, shift := range [...]uint{0, 11, 22} {
		var count [2048]int
		for _, r := range src {
			count[(uint32(r.lo)>>shift)&2047]++
		}
		if count[(uint32(src[0].lo)>>shift)&2047] == len(src) {
			continue // every key shares this digit
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, r := range src {
			d := (uint32(r.lo) >> shift) & 2047
			dst[count[d]] = r
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &rs[0] {
		copy(rs, src)
	}
}
