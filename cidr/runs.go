package cidr

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// An Appender builds a Set from ranges given in ascending order, as a walk
// over sorted data yields them (a MaxMind DB's search tree, a sorted CSV, a
// table's runs). Each range is merged into the last one or appended in
// constant time, with none of the batching and sorting a [Builder] does for
// input in any order: for half a million ranges that is most of the cost.
//
// Input out of order is still correct, only slower: from the first range
// that starts below the one before it, the Appender collects that family's
// ranges and sorts them once, in Set. Input never removes addresses; use a
// Builder or the set algebra for that.
//
// The zero Appender is empty and ready to use. Invalid input (an invalid
// address, or a range whose bounds are of different families or whose last
// address is below its first) is recorded and reported once, by [Appender.Set]; the rest is
// still applied. IPv4-mapped input is handled as by a Builder. An Appender
// must not be copied after first use and is not safe for concurrent use.
//
// Invariants: unless unsorted4 is set, v4 is in canonical form (sorted,
// non-overlapping, non-adjacent); otherwise it is input to be normalized
// by Set. Likewise v6.
type Appender struct {
	v4                   []r4
	v6                   []r6
	unsorted4, unsorted6 bool
	errs                 []error
}

// setOf is the one place runs.go makes a Set, from canonical lists.
func setOf(v4 []r4, v6 []r6) Set { return Set{v4: v4, v6: v6} }

// Append adds every address from first to last, inclusive.
func (a *Appender) Append(first, last netip.Addr) {
	// Plain IPv4 and IPv6 first, with no zone or mapping checks: a caller
	// appending a million ranges spends its time here.
	if first.Is4() && last.Is4() {
		a.append4(r4{key4(first), key4(last)})
		return
	}
	if first.Is6() && last.Is6() && !first.Is4In6() && !last.Is4In6() && first.Zone() == "" && last.Zone() == "" {
		a.append6(r6{key6(first), key6(last)})
		return
	}
	a.slow(first, last)
}

// AppendPrefix adds every address of p. Host bits are ignored.
func (a *Appender) AppendPrefix(p netip.Prefix) {
	if !p.IsValid() {
		a.errorf("invalid prefix %v", p)
		return
	}
	addr, n := p.Addr(), p.Bits()
	if addr.Is4In6() && n >= 96 {
		addr, n = addr.Unmap(), n-96
	}
	if addr.Is4() {
		a.append4(prefixRange4(from4(addr), n))
		return
	}
	a.append6(prefixRange6(from6(addr), n))
}

// Grow reserves room for n4 more IPv4 and n6 more IPv6 ranges, as
// slices.Grow does: a caller that knows how many ranges it will append
// (or a close upper bound) saves the copies of growing, which for a large
// set cost as much as the appending itself.
func (a *Appender) Grow(n4, n6 int) {
	if n4 > 0 {
		a.v4 = slices.Grow(a.v4, n4)
	}
	if n6 > 0 {
		a.v6 = slices.Grow(a.v6, n6)
	}
}

// slow is Append for everything but plain ranges, with Builder's rules.
func (a *Appender) slow(lo, hi netip.Addr) {
	lo, hi = lo.WithZone(""), hi.WithZone("")
	switch {
	case !lo.IsValid() || !hi.IsValid():
	case lo.Is4In6() && hi.Is4In6() || lo.Is4() && hi.Is4In6() || lo.Is4In6() && hi.Is4():
		// Only a range wholly inside ::ffff:0:0/96 is IPv4; see Set.
		if lo, hi = lo.Unmap(), hi.Unmap(); !hi.Less(lo) {
			a.append4(r4{from4(lo), from4(hi)})
			return
		}
	case lo.Is6() && hi.Is6():
		if !hi.Less(lo) {
			a.append6(r6{from6(lo), from6(hi)})
			return
		}
	}
	a.errorf("invalid range %v-%v", lo, hi)
}

func (a *Appender) append4(r r4) {
	if r.hi < r.lo {
		a.errorf("invalid range %v-%v", r.lo.addr(), r.hi.addr())
		return
	}
	if n := len(a.v4); n > 0 && !a.unsorted4 {
		last := &a.v4[n-1]
		switch {
		case r.lo < last.lo:
			a.unsorted4 = true // Set sorts
		case uint64(r.lo) <= uint64(last.hi)+1:
			last.hi = max(last.hi, r.hi)
			return
		}
	}
	a.v4 = append(a.v4, r)
}

func (a *Appender) append6(r r6) {
	if r.hi.less(r.lo) {
		a.errorf("invalid range %v-%v", r.lo.addr(), r.hi.addr())
		return
	}
	if n := len(a.v6); n > 0 && !a.unsorted6 {
		last := &a.v6[n-1]
		switch {
		case r.lo.less(last.lo):
			a.unsorted6 = true
		case !last.hi.less(r.lo) || last.hi.succ() == r.lo: // overlapping or adjacent
			if last.hi.less(r.hi) {
				last.hi = r.hi
			}
			return
		}
	}
	a.v6 = append(a.v6, r)
}

func (a *Appender) errorf(format string, args ...any) {
	a.errs = append(a.errs, fmt.Errorf("cidr: "+format, args...))
}

// Set returns the set of everything appended and, joined, the errors of
// every invalid input seen (each was skipped). It empties the Appender,
// whose storage the Set now owns, for reuse.
func (a *Appender) Set() (Set, error) {
	v4, v6 := a.v4, a.v6
	if a.unsorted4 {
		v4 = normalize4(v4)
	} else {
		v4 = shrink(v4)
	}
	if a.unsorted6 {
		v6 = normalize6(v6)
	} else {
		v6 = shrink(v6)
	}
	err := errors.Join(a.errs...)
	*a = Appender{}
	return setOf(v4, v6), err
}
