package cidr

import (
	"math/big"
	"slices"
)

// A Goal says what an address list must do: match every address of Match
// and no address outside Match ∪ DontCare. The addresses of DontCare that
// are not in Match (space without country data, bogons) may go either way,
// which is what lets a list be shorter than the exact one.
//
// An address in both Match and DontCare must match: an explicitly listed
// address is never dropped because a broad don't-care sweep covers it. The
// rest of each family's space, outside Match ∪ DontCare, is the must-not
// set. The families are independent: each IPv4 address is classified by
// the IPv4 parts of the sets, each IPv6 address by the IPv6 parts. The zero
// Goal matches nothing and cares about everything.
type Goal struct {
	Match    Set
	DontCare Set
}

// Inverse returns the goal of the opposite rule: match what g must not
// match, with the same don't-care space. A negated rule "not in X", X
// fitting g, classifies every cared-for address as "in Y" does, Y fitting
// g.Inverse(); the two lists can differ much in length, so compare both
// (see [Goal.MinPrefixes]).
func (g Goal) Inverse() Goal {
	dc := g.DontCare.Difference(g.Match)
	return Goal{Match: g.Match.Union(dc).Complement(), DontCare: dc}
}

// MustNot returns the addresses the goal must not match: per family, those
// outside Match ∪ DontCare.
func (g Goal) MustNot() Set { return g.Match.Union(g.DontCare).Complement() }

// Loss counts, per family, the cared-for addresses a set classifies
// wrongly against the goal.
//
// For a list of "english" countries used by a negated rule, Extra are
// foreign senders let through and Missed are english senders sent to the
// strict server. The IPv6 counts are never nil in a Loss returned by this
// package.
type Loss struct {
	Extra4, Missed4 uint64
	Extra6, Missed6 *big.Int
}

// Total4 returns the misclassified IPv4 addresses, Extra4 + Missed4.
func (l Loss) Total4() uint64 { return l.Extra4 + l.Missed4 }

// Total6 returns the misclassified IPv6 addresses, Extra6 + Missed6.
func (l Loss) Total6() *big.Int {
	n := new(big.Int)
	if l.Extra6 != nil {
		n.Add(n, l.Extra6)
	}
	if l.Missed6 != nil {
		n.Add(n, l.Missed6)
	}
	return n
}

// Loss counts what s gets wrong against g: the must-not addresses it
// matches and the Match addresses it does not.
func (g Goal) Loss(s Set) Loss {
	extra := s.Intersect(g.MustNot())
	missed := g.Match.Difference(s)
	return Loss{
		Extra4: extra.NumAddrs4(), Missed4: missed.NumAddrs4(),
		Extra6: extra.NumAddrs6(), Missed6: missed.NumAddrs6(),
	}
}

// A part is one family's three-way partition, the input of the optimizers:
// segs holds the Match ranges and the don't-care ranges (without Match),
// sorted and disjoint, every other address of [0, 2^width) being must-not.
// Addresses and counts are a6 for both families (an IPv4 address has
// hi = 0). cumM[i] and cumD[i] count the Match and don't-care addresses of
// segs[:i].
type part struct {
	width      int
	segs       []seg
	cumM, cumD []a6
}

type seg struct {
	lo, hi a6
	m      bool // Match; otherwise don't-care
}

func (g Goal) part4() *part {
	return newPart(32, widen4(g.Match.v4), widen4(difference(g.DontCare.v4, g.Match.v4)))
}

func (g Goal) part6() *part {
	return newPart(128, g.Match.v6, difference(g.DontCare.v6, g.Match.v6))
}

func widen4(rs []r4) []r6 {
	out := make([]r6, len(rs))
	for i, r := range rs {
		out[i] = r6{a6{0, uint64(r.lo)}, a6{0, uint64(r.hi)}}
	}
	return out
}

// narrow4 converts back ranges produced on a widened IPv4 partition.
func narrow4(rs []r6) []r4 {
	out := make([]r4, len(rs))
	for i, r := range rs {
		out[i] = r4{a4(r.lo.lo), a4(r.hi.lo)}
	}
	return out
}

func newPart(width int, m, d []r6) *part {
	p := &part{width: width, segs: make([]seg, 0, len(m)+len(d))}
	i, j := 0, 0
	for i < len(m) || j < len(d) {
		if j == len(d) || i < len(m) && m[i].lo.less(d[j].lo) {
			p.segs = append(p.segs, seg{m[i].lo, m[i].hi, true})
			i++
		} else {
			p.segs = append(p.segs, seg{d[j].lo, d[j].hi, false})
			j++
		}
	}
	p.cumM = make([]a6, len(p.segs)+1)
	p.cumD = make([]a6, len(p.segs)+1)
	for k, s := range p.segs {
		n := s.hi.sub(s.lo).succ()
		p.cumM[k+1], p.cumD[k+1] = p.cumM[k], p.cumD[k]
		if s.m {
			p.cumM[k+1] = p.cumM[k+1].add(n)
		} else {
			p.cumD[k+1] = p.cumD[k+1].add(n)
		}
	}
	return p
}

// last returns the family's highest address.
func (p *part) last() a6 { return lowMask6(p.width) }

// counts returns the Match and don't-care addresses of [lo, hi], given
// that segs[i:j] are the segments overlapping it. Arithmetic wraps, which
// is exact for every block smaller than the whole IPv6 space.
func (p *part) counts(lo, hi a6, i, j int) (m, d a6) {
	if i >= j {
		return
	}
	m = p.cumM[j].sub(p.cumM[i])
	d = p.cumD[j].sub(p.cumD[i])
	// Take off what the edge segments stick out.
	if s := p.segs[i]; s.lo.less(lo) {
		if s.m {
			m = m.sub(lo.sub(s.lo))
		} else {
			d = d.sub(lo.sub(s.lo))
		}
	}
	if s := p.segs[j-1]; hi.less(s.hi) {
		if s.m {
			m = m.sub(s.hi.sub(hi))
		} else {
			d = d.sub(s.hi.sub(hi))
		}
	}
	return
}

// split returns the segment windows of the two halves of a block whose
// segments are segs[i:j] and whose upper half starts at mid.
func (p *part) split(mid a6, i, j int) (li, lj, ri, rj int) {
	// k: first segment starting at or after mid.
	k := i + sortSearch(j-i, func(x int) bool { return !p.segs[i+x].lo.less(mid) })
	ri = k
	if k > i && !p.segs[k-1].hi.less(mid) {
		ri = k - 1 // straddles the middle
	}
	return i, k, ri, j
}

func sortSearch(n int, f func(int) bool) int {
	i, j := 0, n
	for i < j {
		h := int(uint(i+j) >> 1)
		if !f(h) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// trivial handles a partition whose answer needs no search: nothing to
// match, or nothing that must not match. ok is false otherwise.
func (p *part) trivial() (out []r6, ok bool) {
	if !p.hasM() {
		return nil, true
	}
	if p.noMustNot() {
		return []r6{{a6{}, p.last()}}, true
	}
	return nil, false
}

// totalM returns the Match addresses, saturated at 2^128−1 (all of IPv6).
func (p *part) totalM() a6 {
	if n := p.cumM[len(p.segs)]; !n.isZero() || !p.hasM() {
		return n
	}
	return max6
}

func (p *part) hasM() bool {
	return slices.ContainsFunc(p.segs, func(s seg) bool { return s.m })
}

// noMustNot reports whether Match and don't-care cover the whole family.
func (p *part) noMustNot() bool {
	if len(p.segs) == 0 || !p.segs[0].lo.isZero() || p.segs[len(p.segs)-1].hi != p.last() {
		return false
	}
	for k := 1; k < len(p.segs); k++ {
		if p.segs[k-1].hi.succ() != p.segs[k].lo {
			return false
		}
	}
	return true
}
