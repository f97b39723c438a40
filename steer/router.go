package steer

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

// A Router is a plan compiled for routing connections in process: the
// fast form of [Plan.Route], with the same answers (proven by property
// tests), allocation-free and safe for concurrent use.
//
// For each destination (entry point address and port) it keeps one
// partition of the source address space into runs, each labelled with the
// rule that wins there, so that a Route is a short scan of the
// destinations and one binary search, whatever the number of rules and
// sets. Only hash-split rules are left to evaluate per connection.
// (When cidr's lookup Table is available, the partition can be one.)
type Router struct {
	dests []dest
	// decisions[i] is the Decision of plan rule i; hashes[i] its hash.
	decisions []Decision
	hashes    []HashRange
	// chains[label] are the rules whose address conditions hold on a run,
	// in plan order, ending at the first without a hash: the first whose
	// hash matches wins. chains[0] is empty: no rule.
	chains [][]int32
}

type dest struct {
	dst  netip.Addr
	port uint16
	runs runs
}

// runs partitions one family's address space: run i starts at start[i]
// and has label[i]; start[0] is the family's first address.
//
// idx narrows the search by the address's top 16 bits: the runs starting
// in block h are start[idx[h]:idx[h+1]], so a lookup is one index load and
// a binary search over a handful of runs (the cache-friendly shape of
// bart and DIR-24-8, kept small: 256 KiB per destination).
type runs struct {
	start4 []uint32
	start6 []u128
	label  []uint32
	idx    []uint32 // len 1<<16 + 1
}

// index builds idx from the starts' top 16 bits.
func (rs *runs) index(top func(i int) uint32) {
	rs.idx = make([]uint32, 1<<16+1)
	n := len(rs.label)
	i := 0
	for h := range 1<<16 + 1 {
		for i < n && top(i) < uint32(h) {
			i++
		}
		rs.idx[h] = uint32(i)
	}
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func key6(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (k u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

// Router compiles the plan into a [Router]. The plan must be valid
// ([Plan.Validate]); the Router does not change when the plan does.
func (p *Plan) Router() (*Router, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rt := &Router{chains: [][]int32{nil}}
	chainID := map[string]uint32{"": 0}
	for i := range p.Rules {
		r := &p.Rules[i]
		rt.decisions = append(rt.decisions, Decision{Rule: i, Target: r.Target, To: r.To})
		rt.hashes = append(rt.hashes, r.SrcHash)
	}
	// Destinations in order of first appearance; rules keep plan order.
	byDest := map[destination][]int{}
	var order []destination
	for i := range p.Rules {
		r := &p.Rules[i]
		d := destination{r.Family, r.DstAddr, r.DstPort}
		if byDest[d] == nil {
			order = append(order, d)
		}
		byDest[d] = append(byDest[d], i)
	}
	for _, d := range order {
		idx := byDest[d]
		matches := make([]cidr.Set, len(idx))
		for j, i := range idx {
			matches[j] = staticMatch(p, &p.Rules[i])
		}
		label := func(a netip.Addr) uint32 {
			var chain []int32
			for j, i := range idx {
				if matches[j].Contains(a) {
					chain = append(chain, int32(i))
					if p.Rules[i].SrcHash.Mod == 0 {
						break
					}
				}
			}
			var kb strings.Builder
			for _, i := range chain {
				kb.WriteString(strconv.Itoa(int(i)))
				kb.WriteByte(',')
			}
			k := kb.String()
			id, ok := chainID[k]
			if !ok {
				id = uint32(len(rt.chains))
				chainID[k] = id
				rt.chains = append(rt.chains, chain)
			}
			return id
		}
		rt.dests = append(rt.dests, dest{dst: d.dst, port: d.port, runs: partition(d.fam, matches, label)})
	}
	return rt, nil
}

// partition cuts the family's space at every edge of the match sets and
// labels each piece, merging neighbours with the same label.
func partition(fam int, matches []cidr.Set, label func(netip.Addr) uint32) runs {
	var rs runs
	if fam == 4 {
		cuts := []uint64{0}
		for _, m := range matches {
			for r := range m.IPv4().AllRanges() {
				cuts = append(cuts, uint64(addrU32(r.From())), uint64(addrU32(r.To()))+1)
			}
		}
		slices.Sort(cuts)
		cuts = slices.Compact(cuts)
		for _, c := range cuts {
			if c > 0xffffffff {
				continue
			}
			l := label(u32addr(uint32(c)))
			if n := len(rs.label); n > 0 && rs.label[n-1] == l {
				continue
			}
			rs.start4 = append(rs.start4, uint32(c))
			rs.label = append(rs.label, l)
		}
		rs.index(func(i int) uint32 { return rs.start4[i] >> 16 })
		return rs
	}
	type cut struct {
		k   u128
		top bool // one past the last address
	}
	cuts := []cut{{}}
	for _, m := range matches {
		for r := range m.IPv6().AllRanges() {
			hi := key6(r.To())
			next := u128{hi.hi, hi.lo + 1}
			if next.lo == 0 {
				next.hi++
			}
			cuts = append(cuts, cut{k: key6(r.From())}, cut{k: next, top: next == u128{}})
		}
	}
	slices.SortFunc(cuts, func(a, b cut) int {
		switch {
		case a.top != b.top:
			if a.top {
				return 1
			}
			return -1
		case a.k.less(b.k):
			return -1
		case b.k.less(a.k):
			return 1
		}
		return 0
	})
	cuts = slices.Compact(cuts)
	for _, c := range cuts {
		if c.top {
			continue
		}
		l := label(c.k.addr())
		if n := len(rs.label); n > 0 && rs.label[n-1] == l {
			continue
		}
		rs.start6 = append(rs.start6, c.k)
		rs.label = append(rs.label, l)
	}
	rs.index(func(i int) uint32 { return uint32(rs.start6[i].hi >> 48) })
	return rs
}

// Route decides where a TCP connection from src to dst:port goes, as
// [Plan.Route] does. It does not allocate.
func (rt *Router) Route(src, dst netip.Addr, port uint16) Decision {
	if dst.Is4In6() {
		dst = dst.Unmap()
	}
	for i := range rt.dests {
		d := &rt.dests[i]
		if d.port != port || d.dst != dst {
			continue
		}
		if src.Is4In6() {
			src = src.Unmap()
		}
		var l uint32
		switch {
		case src.Is4() && d.runs.start4 != nil:
			l = d.runs.lookup4(addrU32(src))
		case src.Is6() && d.runs.start6 != nil:
			l = d.runs.lookup6(key6(src))
		default:
			return Decision{Rule: -1}
		}
		for _, ri := range rt.chains[l] {
			if h := rt.hashes[ri]; h.Mod == 0 || h.Contains(src) {
				return rt.decisions[ri]
			}
		}
		return Decision{Rule: -1}
	}
	return Decision{Rule: -1}
}

func (rs *runs) lookup4(k uint32) uint32 {
	h := k >> 16
	// The last run starting at or before k: among those starting in k's
	// block, or else the one before the block (start[0] is 0, so there is
	// one).
	lo, hi := rs.idx[h], rs.idx[h+1]
	s := rs.start4[lo:hi]
	i, j := 0, len(s)
	for i < j {
		m := int(uint(i+j) >> 1)
		if s[m] <= k {
			i = m + 1
		} else {
			j = m
		}
	}
	return rs.label[int(lo)+i-1]
}

func (rs *runs) lookup6(k u128) uint32 {
	h := k.hi >> 48
	lo, hi := rs.idx[h], rs.idx[h+1]
	s := rs.start6[lo:hi]
	i, j := 0, len(s)
	for i < j {
		m := int(uint(i+j) >> 1)
		if !k.less(s[m]) {
			i = m + 1
		} else {
			j = m
		}
	}
	return rs.label[int(lo)+i-1]
}

// String summarises the router, for debugging.
func (rt *Router) String() string {
	var b strings.Builder
	for _, d := range rt.dests {
		fmt.Fprintf(&b, "%v:%d %d runs; ", d.dst, d.port, len(d.runs.label))
	}
	fmt.Fprintf(&b, "%d chains", len(rt.chains))
	return b.String()
}
