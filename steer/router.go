package steer

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// A Router is a plan compiled for routing connections in process: the
// fast form of [Plan.Route], with the same answers (proven by property
// tests), allocation-free and safe for concurrent use.
//
// Inside, the source address space is cut into pieces on which every
// destination (entry point address and port) applies the same rule: a
// source's label in a [cidr.Table] says, for every destination at once,
// which rule wins there. So a Route is a short scan of the destinations,
// one table lookup and one load of the destination's Decision for the
// label, whatever the number of rules and sets; only hash-split rules are
// left to evaluate per connection. The table has only the boundaries of
// the plan's sets and source ranges and does not grow with the number of
// entry points: the seed's MX rotation gives each of its halves one label
// shared by every MX. (A plan whose destinations need more than
// [cidr.MaxLabel] label combinations gets one table per destination.)
type Router struct {
	dests []dest // IPv4 destinations first, dests[:n4]
	n4    int
	// decisions[i] is the Decision of plan rule i; hashes[i] its hash.
	decisions []Decision
	hashes    []HashRange
	// chains[c] are plan rules to try in order, the first whose hash
	// matches winning: the rules whose address conditions hold on a piece,
	// up to the first without a hash.
	chains [][]int32
	tables int // distinct tables, for String
	labels int // labels over all tables, for String
}

// A dest is one destination of a Router: tab labels the sources, dec
// says what each label means here.
type dest struct {
	dst  netip.Addr
	port uint16
	tab  *cidr.Table
	// dec[label] is the decision on the label's sources, unless its Rule
	// is -2-c: then the rules of chains[c] are tried, by their hashes.
	dec []Decision
}

const noRule = -1

// errLabels reports a partition with more label combinations than a
// cidr.Table holds.
var errLabels = errors.New("more than cidr.MaxLabel distinct rule combinations")

// maxLabels is the number of labels one table may have: a variable so that
// tests can force the one-table-per-destination fallback on small plans.
var maxLabels = cidr.MaxLabel + 1

// Router compiles the plan into a [Router]. The plan must be valid
// ([Plan.Validate]); the Router does not change when the plan does.
func (p *Plan) Router() (*Router, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rt := &Router{}
	for i := range p.Rules {
		r := &p.Rules[i]
		rt.decisions = append(rt.decisions, Decision{Rule: i, Target: r.Target, To: r.To})
		rt.hashes = append(rt.hashes, r.SrcHash)
	}
	// Destinations in order of first appearance; rules keep plan order.
	b := &routerBuild{p: p, rt: rt, chainID: map[string]int32{}}
	byDest := map[destination]int{}
	for i := range p.Rules {
		r := &p.Rules[i]
		d := destination{r.Family, r.DstAddr, r.DstPort}
		j, ok := byDest[d]
		if !ok {
			j = len(rt.dests)
			byDest[d] = j
			rt.dests = append(rt.dests, dest{dst: r.DstAddr, port: r.DstPort})
			b.fam = append(b.fam, r.Family)
			b.rules = append(b.rules, nil)
		}
		b.rules[j] = append(b.rules[j], i)
	}
	all := make([]int, len(rt.dests))
	for i := range all {
		all[i] = i
	}
	err := b.group(all)
	if errors.Is(err, errLabels) {
		// Too many combinations to share: one table per destination.
		rt.tables, rt.labels = 0, 0
		for i := range all {
			if err = b.group([]int{i}); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("steer: router: %w", err)
	}
	// IPv4 destinations first, so that Route scans one family's only.
	slices.SortStableFunc(rt.dests, func(x, y dest) int {
		return cmp.Compare(x.dst.BitLen(), y.dst.BitLen())
	})
	for _, d := range rt.dests {
		if d.dst.Is4() {
			rt.n4++
		}
	}
	return rt, nil
}

// routerBuild is the state of Plan.Router.
type routerBuild struct {
	p       *Plan
	rt      *Router
	fam     []int   // per destination
	rules   [][]int // per destination, its plan rules in order
	chainID map[string]int32
}

// matchCond is a rule's address conditions, which make its match set
// within its family.
type matchCond struct {
	src    netipx.IPRange
	set    string
	setNot bool
}

// A span is an inclusive range of keys: IPv4 addresses as the low 32 bits,
// IPv6 addresses as all 128.
type span struct{ lo, hi u128 }

// group builds the table shared by the destinations ds.
func (b *routerBuild) group(ds []int) error {
	var tb cidr.TableBuilder
	// Per label, the family it belongs to and the win value of each
	// destination of that family in ds.
	type labelInfo struct {
		fam  int
		wins []int32
	}
	var labels []labelInfo
	var buf []netip.Prefix
	for _, fam := range []int{4, 6} {
		var fds []int // the destinations of ds of this family
		for _, d := range ds {
			if b.fam[d] == fam {
				fds = append(fds, d)
			}
		}
		if len(fds) == 0 {
			continue
		}
		last := u128{^uint64(0), ^uint64(0)}
		if fam == 4 {
			last = u128{0, 0xffffffff}
		}
		// The match sets of the rules of fds (rules with the same address
		// conditions, such as the seed's on every MX, share one), and the
		// cuts between them.
		var matches [][]span
		var which []int // per rule of fds in order, its match set
		byCond := map[matchCond]int{}
		for _, d := range fds {
			for _, i := range b.rules[d] {
				r := &b.p.Rules[i]
				mc := matchCond{r.Src, r.SrcSet, r.SrcSetNot}
				j, ok := byCond[mc]
				if !ok {
					j = len(matches)
					byCond[mc] = j
					matches = append(matches, spans(fam, staticMatch(b.p, r)))
				}
				which = append(which, j)
			}
		}
		n := 1
		for _, m := range matches {
			n += 2 * len(m)
		}
		cuts := make([]u128, 1, n)
		for _, m := range matches {
			for _, s := range m {
				cuts = append(cuts, s.lo)
				if s.hi != last {
					cuts = append(cuts, s.hi.succ())
				}
			}
		}
		cuts = sortU128(cuts)
		cur := make([]int, len(matches)) // per match set, the first span not ending before the cut
		sig := make([]byte, len(matches))
		// Labels by membership of the match sets (a cache) and by what
		// wins at each destination (what a label is): the same wins
		// under different memberships share a label.
		bySig := map[string]int{}
		byWins := map[string]int{} // -1: no rule anywhere
		wins := make([]int32, len(fds))
		winKey := make([]byte, 4*len(fds))
		runLabel, runStart := -2, u128{}
		flush := func(end u128) {
			if runLabel < 0 {
				return
			}
			buf = appendPrefixes(buf[:0], fam, runStart, end)
			for _, p := range buf {
				tb.AddPrefix(p, uint16(runLabel))
			}
		}
		for _, c := range cuts {
			for j, m := range matches {
				for cur[j] < len(m) && m[cur[j]].hi.less(c) {
					cur[j]++
				}
				sig[j] = 0
				if cur[j] < len(m) && !c.less(m[cur[j]].lo) {
					sig[j] = 1
				}
			}
			l, ok := bySig[string(sig)]
			if !ok {
				// What wins at each destination, from the membership of
				// its rules.
				j, some := 0, false
				for k, d := range fds {
					var chain []int32
					for _, i := range b.rules[d] {
						if sig[which[j]] == 1 && (len(chain) == 0 || b.p.Rules[chain[len(chain)-1]].SrcHash.Mod != 0) {
							chain = append(chain, int32(i))
						}
						j++
					}
					wins[k] = b.win(chain)
					some = some || wins[k] != noRule
				}
				for k, w := range wins {
					binary.LittleEndian.PutUint32(winKey[4*k:], uint32(w))
				}
				if l, ok = byWins[string(winKey)]; !ok {
					l = -1
					if some {
						l = len(labels)
						labels = append(labels, labelInfo{fam, slices.Clone(wins)})
						if len(labels) > maxLabels {
							return errLabels
						}
					}
					byWins[string(winKey)] = l
				}
				bySig[string(sig)] = l
			}
			if l != runLabel {
				flush(c.pred())
				runLabel, runStart = l, c
			}
		}
		flush(last)
	}
	t, err := tb.Table()
	if err != nil {
		return err
	}
	for _, d := range ds {
		dd := &b.rt.dests[d]
		dd.tab = t
		dd.dec = make([]Decision, len(labels))
		k := 0 // d's place among the destinations of its family
		for _, e := range ds[:slices.Index(ds, d)] {
			if b.fam[e] == b.fam[d] {
				k++
			}
		}
		for l, li := range labels {
			w := int32(noRule)
			if li.fam == b.fam[d] {
				w = li.wins[k]
			}
			if w >= 0 {
				dd.dec[l] = b.rt.decisions[w]
			} else {
				dd.dec[l] = Decision{Rule: int(w)} // noRule, or a chain
			}
		}
	}
	b.rt.tables++
	b.rt.labels += len(labels)
	return nil
}

// win returns the win value of a chain of rules.
func (b *routerBuild) win(chain []int32) int32 {
	switch {
	case len(chain) == 0:
		return noRule
	case b.p.Rules[chain[0]].SrcHash.Mod == 0:
		return chain[0]
	}
	var kb strings.Builder
	for _, i := range chain {
		fmt.Fprintf(&kb, "%d,", i)
	}
	id, ok := b.chainID[kb.String()]
	if !ok {
		id = int32(len(b.rt.chains))
		b.chainID[kb.String()] = id
		b.rt.chains = append(b.rt.chains, chain)
	}
	return -2 - id
}

// spans returns the ranges of s in the family, as keys.
func spans(fam int, s cidr.Set) []span {
	if fam == 4 {
		s = s.IPv4()
	} else {
		s = s.IPv6()
	}
	out := make([]span, 0, s.NumRanges())
	if fam == 4 {
		for r := range s.AllRanges() {
			out = append(out, span{u128{0, uint64(addrU32(r.From()))}, u128{0, uint64(addrU32(r.To()))}})
		}
		return out
	}
	for r := range s.AllRanges() {
		out = append(out, span{key6(r.From()), key6(r.To())})
	}
	return out
}

// appendPrefixes appends the minimal prefix list of the keys lo-hi.
func appendPrefixes(dst []netip.Prefix, fam int, lo, hi u128) []netip.Prefix {
	if fam == 4 {
		return netipx.IPRangeFrom(u32addr(uint32(lo.lo)), u32addr(uint32(hi.lo))).AppendPrefixes(dst)
	}
	return netipx.IPRangeFrom(lo.addr(), hi.addr()).AppendPrefixes(dst)
}

// sortU128 sorts keys and removes duplicates.
func sortU128(keys []u128) []u128 {
	slices.SortFunc(keys, func(a, b u128) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	return slices.Compact(keys)
}

// Route decides where a TCP connection from src to dst:port goes, as
// [Plan.Route] does. It does not allocate.
func (rt *Router) Route(src, dst netip.Addr, port uint16) Decision {
	// A Decision is seven words: returned from a call, the caller spills
	// the registers and reloads them wider, a store-forwarding stall that
	// cost 13 ns, as much as a cache-resident IPv6 lookup. A pointer
	// returns in one register, and Route, this small, is inlined: the
	// caller copies the Decision from memory (about 3 ns).
	return *rt.route(src, dst, port)
}

// noDecision is what route returns when no rule matches; callers copy it.
var noDecision = Decision{Rule: -1}

func (rt *Router) route(src, dst netip.Addr, port uint16) *Decision {
	if dst.Is4In6() {
		dst = dst.Unmap()
	}
	ds := rt.dests[rt.n4:]
	if dst.Is4() {
		ds = rt.dests[:rt.n4]
	}
	for i := range ds {
		d := &ds[i]
		if d.port != port || d.dst != dst {
			continue
		}
		l, ok := d.tab.Lookup(src)
		if !ok {
			break
		}
		p := &d.dec[l]
		if p.Rule < noRule {
			for _, ri := range rt.chains[-2-p.Rule] {
				if h := rt.hashes[ri]; h.Mod == 0 || h.Contains(src) {
					return &rt.decisions[ri]
				}
			}
			break
		}
		return p
	}
	return &noDecision
}

// String summarises the router, for debugging.
func (rt *Router) String() string {
	return fmt.Sprintf("%d destinations, %d tables, %d labels, %d hash chains", len(rt.dests), rt.tables, rt.labels, len(rt.chains))
}

// u128 is an address as a 128-bit integer.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) succ() u128 {
	if a.lo++; a.lo == 0 {
		a.hi++
	}
	return a
}

func (a u128) pred() u128 {
	if a.lo--; a.lo == ^uint64(0) {
		a.hi--
	}
	return a
}

func key6(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (a u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}
