package steer

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// Counts are a set's entry counts in the forms backends install.
type Counts struct {
	Ranges4, Prefixes4 int // IPv4 maximal ranges and minimal CIDR prefixes
	Ranges6, Prefixes6 int
}

// Counts returns the set's entry counts.
func (s Set) Counts() Counts { return countsOf(s.Addrs) }

// ComplementCounts returns the entry counts of the set's complement (per
// family): what a backend would install to match "not in the set"
// positively, which it might prefer where that is smaller.
func (s Set) ComplementCounts() Counts { return countsOf(s.Addrs.Complement()) }

func countsOf(s cidr.Set) Counts {
	v4, v6 := s.IPv4(), s.IPv6()
	return Counts{v4.NumRanges(), v4.NumPrefixes(), v6.NumRanges(), v6.NumPrefixes()}
}

var (
	universe4 = mustSet(netip.MustParsePrefix("0.0.0.0/0"))
	universe6 = mustSet(netip.MustParsePrefix("::/0"))
)

func mustSet(ps ...netip.Prefix) cidr.Set {
	var b cidr.Builder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	s, err := b.Set()
	if err != nil {
		panic(err)
	}
	return s
}

func universe(fam int) cidr.Set {
	if fam == 4 {
		return universe4
	}
	return universe6
}

// staticMatch returns the sources a rule matches, ignoring its hash.
func staticMatch(p *Plan, r *Rule) cidr.Set {
	m := universe(r.Family)
	if r.Src.IsValid() {
		var b cidr.Builder
		b.AddRange(r.Src)
		src, _ := b.Set()
		m = m.Intersect(src)
	}
	if r.SrcSet != "" {
		s, _ := p.Set(r.SrcSet)
		if r.SrcSetNot {
			m = m.Difference(s.Addrs)
		} else {
			m = m.Intersect(s.Addrs)
		}
	}
	return m
}

type destination struct {
	fam  int
	dst  netip.Addr
	port uint16
}

// checkShadows reports policy rules none of whose plan rules can match a
// source that earlier rules have not taken.
//
// Destinations whose rules have the same address conditions in the same
// order (the seed's MX, whose rotated splits cut the sources at the same
// points) have the same live rules, so each distinct sequence is checked
// once, and each distinct condition's match set is built once: the set
// operations on country-sized sets are most of the work.
func (c *compiler) checkShadows(plan *Plan) {
	live := make([]bool, len(c.p.Rules))
	emitted := make([]bool, len(c.p.Rules))
	byDest := map[destination][]int{}
	var order []destination
	for i := range plan.Rules {
		r := &plan.Rules[i]
		d := destination{r.Family, r.DstAddr, r.DstPort}
		if byDest[d] == nil {
			order = append(order, d)
		}
		byDest[d] = append(byDest[d], i)
	}
	type cond struct {
		fam int
		matchCond
	}
	matches := map[cond]cidr.Set{}
	match := func(r *Rule) cidr.Set {
		k := cond{r.Family, matchCond{r.Src, r.SrcSet, r.SrcSetNot}}
		m, ok := matches[k]
		if !ok {
			m = staticMatch(plan, r)
			matches[k] = m
		}
		return m
	}
	memo := map[string][]bool{} // by sequence of conditions
	var kb strings.Builder
	for _, d := range order {
		if c.ctx.Err() != nil {
			return
		}
		rules := byDest[d]
		kb.Reset()
		for _, i := range rules {
			r := &plan.Rules[i]
			fmt.Fprintf(&kb, "%d %v %q %t %t;", r.Family, r.Src, r.SrcSet, r.SrcSetNot, r.SrcHash.Mod == 0)
		}
		lv, ok := memo[kb.String()]
		if !ok {
			lv = make([]bool, len(rules))
			var covered cidr.Set
			for k, i := range rules {
				r := &plan.Rules[i]
				m := match(r)
				lv[k] = !m.Difference(covered).IsEmpty()
				if r.SrcHash.Mod == 0 && k < len(rules)-1 {
					covered = covered.Union(m)
				}
			}
			memo[kb.String()] = lv
		}
		for k, i := range rules {
			pr := c.ruleFrom[i]
			emitted[pr] = true
			live[pr] = live[pr] || lv[k]
		}
	}
	var by []string // earlier rules, for the message
	for pr, r := range c.p.Rules {
		if emitted[pr] && !live[pr] && c.degraded {
			c.log.Warn("steer: rule shadowed for lack of country data", "rule", r.Name)
		} else if emitted[pr] && !live[pr] {
			c.errs.addf(fmt.Sprintf("rules[%d]", pr), ErrShadowed, "rule %s matches no source that earlier rules (%s) have not taken", r.Name, strings.Join(by, ", "))
		}
		by = append(by, r.Name)
	}
}

// checkFailover proves the MX rotation: for every split and every source,
// the entry points of the rule do not all send it to the same server
// (when the pool has two servers or more and the rule two entry points or
// more). It works on the plan rules themselves, whatever made them.
func (c *compiler) checkFailover(plan *Plan) {
	type key struct {
		rule int
		fam  int
		port uint16
	}
	type part struct {
		r      netipx.IPRange // source range, or hash values as IPv4 addresses
		target string
	}
	splits := map[key]map[netip.Addr][]part{}
	isHash := map[key]bool{}
	var order []key
	for i := range plan.Rules {
		r := &plan.Rules[i]
		var rg netipx.IPRange
		switch {
		case r.SrcHash.Mod != 0:
			rg = netipx.IPRangeFrom(u32addr(r.SrcHash.Lo), u32addr(r.SrcHash.Hi))
		case r.Src.IsValid():
			rg = r.Src
		default:
			continue
		}
		k := key{c.ruleFrom[i], r.Family, r.DstPort}
		if splits[k] == nil {
			splits[k] = map[netip.Addr][]part{}
			order = append(order, k)
		}
		splits[k][r.DstAddr] = append(splits[k][r.DstAddr], part{rg, r.Target})
		isHash[k] = r.SrcHash.Mod != 0
	}
	reported := map[int]bool{}
	for _, k := range order {
		byEP := splits[k]
		pool := map[string]bool{}
		var bounds []netip.Addr
		for _, parts := range byEP {
			for _, pt := range parts {
				pool[pt.target] = true
				bounds = append(bounds, pt.r.From())
			}
		}
		if len(pool) < 2 || len(byEP) < 2 || reported[k.rule] {
			continue
		}
		slices.SortFunc(bounds, netip.Addr.Compare)
		bounds = slices.Compact(bounds)
		for _, b := range bounds {
			seen := map[string]bool{}
			for _, parts := range byEP {
				for _, pt := range parts {
					if pt.r.Contains(b) {
						seen[pt.target] = true
					}
				}
			}
			if len(seen) == 1 {
				var t string
				for t = range seen {
				}
				what := "sources from " + b.String()
				if isHash[k] {
					what = fmt.Sprintf("sources with hash %d", addrU32(b))
				}
				r := c.p.Rules[k.rule]
				c.errs.addf(fmt.Sprintf("rules[%d]", k.rule), ErrFailover, "rule %s (IPv%d, port %d): %s reach %s on every entry point; rotate the split (rotate: true) so a retry on the next MX reaches another server", r.Name, k.fam, k.port, what, t)
				reported[k.rule] = true
				break
			}
		}
	}
}

func u32addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// checkShrink is the MaxShrink gate: no set may lose more than that share
// of its addresses, per family, against the previous plan.
func (c *compiler) checkShrink(plan *Plan) {
	limit := c.p.Safety.MaxShrink
	if c.opts.Previous == nil || limit <= 0 {
		return
	}
	for _, s := range plan.Sets {
		old, ok := c.opts.Previous.Set(s.Name)
		if !ok {
			continue
		}
		gone := old.Addrs.Difference(s.Addrs)
		if n := old.Addrs.NumAddrs4(); n > 0 {
			if f := float64(gone.NumAddrs4()) / float64(n); f > limit {
				c.errs.addf("groups."+s.Name, ErrGate, "set %s would lose %.1f%% of its IPv4 addresses (limit %.1f%%, safety.max_shrink)", s.Name, 100*f, 100*limit)
			}
		}
		if n := old.Addrs.NumAddrs6(); n.Sign() > 0 {
			f, _ := new(big.Float).Quo(new(big.Float).SetInt(gone.NumAddrs6()), new(big.Float).SetInt(n)).Float64()
			if f > limit {
				c.errs.addf("groups."+s.Name, ErrGate, "set %s would lose %.1f%% of its IPv6 addresses (limit %.1f%%, safety.max_shrink)", s.Name, 100*f, 100*limit)
			}
		}
	}
}
