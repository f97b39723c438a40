package steer

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// Adversarial tests of Router.find's near keys (session 4 review): the
// first four destinations (but ::) compared as two words and a port,
// their /16 indexes held in Router.nearIndex (each near Entry's fast6
// pointing there), the unused keys {::, port 0}, and miss for the rest
// and for the safe read.

// reviewDest is an entry point of the review plans.
type reviewDest struct {
	dst  netip.Addr
	port uint16
}

// reviewPool holds destinations whose words or ports collide in the ways
// find must tell apart: :: (the invalid address's words), 0.0.0.0 (the
// words of ::ffff:0.0.0.0), an IPv4-compatible ::1.2.3.4 next to 1.2.3.4
// (the same low 32 bits, not the same words), ::1, a link-local address,
// the same address at several ports (1, 25, 587, 65535).
var reviewPool = func() []reviewDest {
	var out []reviewDest
	for _, s := range []string{
		"203.0.113.1:25", "203.0.113.1:587", "[2001:db8::1]:25", "[2001:db8::1]:587",
		"[::]:25", "0.0.0.0:25", "[fe80::1]:25", "[::1.2.3.4]:25", "1.2.3.4:25",
		"[2001:db8::2]:65535", "203.0.113.2:1", "[::1]:25", "[::]:587", "0.0.0.0:65535",
	} {
		ap := netip.MustParseAddrPort(s)
		out = append(out, reviewDest{ap.Addr(), ap.Port()})
	}
	return out
}()

// reviewSrcRanges are source ranges per family: halves (the MX split),
// ::/16 and ranges around ::ffff:0:0/96, and single addresses.
var reviewSrcRanges = map[int][]netipx.IPRange{
	4: {
		netipx.MustParseIPRange("0.0.0.0-127.255.255.255"),
		netipx.MustParseIPRange("128.0.0.0-255.255.255.255"),
		netipx.MustParseIPRange("10.0.0.0-10.0.255.255"),
		netipx.MustParseIPRange("0.0.0.0-0.0.0.0"),
		netipx.MustParseIPRange("1.2.3.4-1.2.3.4"),
	},
	6: {
		netipx.MustParseIPRange("::-7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
		netipx.MustParseIPRange("8000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
		netipx.MustParseIPRange("::-::ffff"),
		netipx.MustParseIPRange("::1.2.3.4-::1.2.3.4"),
		crossRanges[0], crossRanges[1],
	},
}

// reviewPlan builds a valid plan on the destinations ds: two sets on the
// edge prefixes, and for each destination one to three rules (a source
// range, a set or its negation, a hash), choices drawn from next(n) in
// [0, n). Rules of different destinations interleave, so that plan
// order and destination order differ.
func reviewPlan(ds []reviewDest, next func(n int) int) *Plan {
	p := &Plan{}
	for j := range 2 {
		var b cidr.Builder
		for range 1 + next(4) {
			b.AddPrefix(netip.MustParsePrefix(edgePrefixes[next(len(edgePrefixes))]))
		}
		if next(3) == 0 {
			b.AddRange(crossRanges[next(len(crossRanges))])
		}
		s, _ := b.Set()
		p.Sets = append(p.Sets, Set{Name: fmt.Sprintf("s%d", j), Addrs: s})
	}
	type pending struct{ d, k int }
	var order []pending
	for i := range ds {
		for k := range 1 + next(3) {
			order = append(order, pending{i, k})
		}
	}
	for i := len(order) - 1; i > 0; i-- { // shuffle, keeping each destination's own rules in order
		j := next(i + 1)
		order[i], order[j] = order[j], order[i]
	}
	for n, o := range order {
		d := ds[o.d]
		fam, to := 4, netip.MustParseAddrPort("10.0.0.1:25")
		if d.dst.Is6() {
			fam, to = 6, netip.MustParseAddrPort("[2001:db8:10::1]:25")
		}
		r := Rule{Name: fmt.Sprintf("r%d", n), Family: fam, DstAddr: d.dst, DstPort: d.port, Target: fmt.Sprintf("t%d", n), To: to}
		switch next(4) {
		case 0:
			rs := reviewSrcRanges[fam]
			r.Src = rs[next(len(rs))]
		case 1:
			r.SrcSet, r.SrcSetNot = p.Sets[next(2)].Name, next(2) == 0
		case 2:
			rs := reviewSrcRanges[fam]
			r.Src = rs[next(len(rs))]
			r.SrcSet, r.SrcSetNot = p.Sets[next(2)].Name, next(2) == 0
		}
		if next(3) == 0 {
			lo := uint32(next(3))
			r.SrcHash = HashRange{Seed: uint32(next(1 << 16)), Mod: 3, Lo: lo, Hi: lo + uint32(next(int(3-lo)))}
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// reviewDsts returns the destinations to route to for the plan: each of
// the pool's (in the plan or not) at its port, the ports beside it, port
// 0 and 65535; in its IPv4-mapped form (zoned or not) or with a zone;
// the IPv4-compatible and IPv4-mapped forms of the IPv4 ones; :: with a
// zone, ::ffff:0.0.0.0, and the invalid address.
func reviewDsts() []reviewDest {
	seen := map[reviewDest]bool{}
	var out []reviewDest
	add := func(a netip.Addr, port uint16) {
		if d := (reviewDest{a, port}); !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	extra := []netip.Addr{{}, netip.MustParseAddr("::%eth0"), netip.MustParseAddr("::ffff:0.0.0.0"), netip.MustParseAddr("::ffff:0.0.0.0%eth0"), netip.MustParseAddr("192.0.2.254")}
	for _, d := range reviewPool {
		forms := []netip.Addr{d.dst}
		if d.dst.Is4() {
			b := d.dst.As16()
			m := netip.AddrFrom16(b)
			b[10], b[11] = 0, 0
			forms = append(forms, m, m.WithZone("eth0"), netip.AddrFrom16(b))
		} else {
			forms = append(forms, d.dst.WithZone("eth0"), d.dst.WithZone("1"))
		}
		forms = append(forms, extra...)
		for _, a := range forms {
			for _, port := range []uint16{d.port, d.port - 1, d.port + 1, 0, 65535} {
				add(a, port)
			}
		}
	}
	return out
}

// reviewSrcs returns sources for the plan: probes (edges, random, mapped,
// zoned, invalid) and the pool's addresses in every form.
func reviewSrcs(p *Plan, rnd *rand.Rand, n int) []netip.Addr {
	srcs := probes(p, rnd, n)
	seen := map[netip.Addr]bool{}
	for _, d := range reviewDsts() {
		if !seen[d.dst] {
			seen[d.dst] = true
			srcs = append(srcs, d.dst)
		}
	}
	return srcs
}

// reviewCheck compares the Routers (built from p, possibly copies) and
// Entries obtained from them with Plan.Route on every source and
// destination, both reads.
func reviewCheck(t *testing.T, name string, p *Plan, srcs []netip.Addr, rts ...*Router) {
	t.Helper()
	dsts := reviewDsts()
	bad := 0
	forEachRead(t, func(read string) {
		for _, d := range dsts {
			for ri, rt := range rts {
				e := rt.Entry(d.dst, d.port)
				for _, src := range srcs {
					want := p.Route(src, d.dst, d.port)
					got, rule := rt.Route(src, d.dst, d.port), rt.Rule(src, d.dst, d.port)
					eg, er := e.Route(src), e.Rule(src)
					if (got != want || rule != want.Rule() || eg != want || er != want.Rule()) && bad < 10 {
						bad++
						t.Errorf("%s, router %d, %s: Route(%v, %v, %d) = %v (Rule %d), Entry %v (Rule %d); plan %v",
							name, ri, read, src, d.dst, d.port, got, rule, eg, er, want)
					}
				}
			}
		}
	})
}

// reviewInvariants checks the near keys of rt against its destinations:
// the first four that are not :: in order (IPv6 first), each key the
// words and port of its destination and pointing to its Entry, whose
// fast6 points to the key's nearIndex; the unused keys {::, port 0}
// with an index of zeros.
func reviewInvariants(t *testing.T, name string, rt *Router) {
	t.Helper()
	var want []*dest
	for i := range rt.dests {
		if d := &rt.dests[i]; d.dst != netip.IPv6Unspecified() && len(want) < len(rt.near) {
			want = append(want, d)
		}
	}
	for i := 1; i < len(rt.dests); i++ {
		if rt.dests[i-1].dst.Is4() && rt.dests[i].dst.Is6() {
			t.Errorf("%s: dests not IPv6 first: %v before %v", name, rt.dests[i-1].dst, rt.dests[i].dst)
		}
	}
	for i := range rt.near {
		k := &rt.near[i]
		if i >= len(want) {
			if k.hi != 0 || k.lo != 0 || k.port != 0 || k.e != nil || rt.nearIndex[i] != (fastIndex{}) {
				t.Errorf("%s: unused near key %d = {%#x %#x %d %p}, want {::, port 0} with an index of zeros", name, i, k.hi, k.lo, k.port, k.e)
			}
			continue
		}
		d := want[i]
		b := d.dst.As16()
		if k.e != &d.e || k.port != d.port || k.hi != beUint64(b[:8]) || k.lo != beUint64(b[8:]) {
			t.Errorf("%s: near key %d = {%#x %#x %d %p}, want %v:%d's", name, i, k.hi, k.lo, k.port, k.e, d.dst, d.port)
		}
		if k.port == 0 || k.hi == 0 && k.lo == 0 {
			t.Errorf("%s: near key %d of %v:%d has the unused key's words or port", name, i, d.dst, d.port)
		}
		if d.e.fast6 != &rt.nearIndex[i] {
			t.Errorf("%s: near %v:%d's Entry's fast6 %p, want &nearIndex[%d] %p", name, d.dst, d.port, d.e.fast6, i, &rt.nearIndex[i])
		}
		if rt.nearIndex[i][0] != fastSlow {
			t.Errorf("%s: nearIndex[%d][0] = %d, want fastSlow (IPv4, mapped and invalid sources)", name, i, rt.nearIndex[i][0])
		}
		if d.e.rt != rt {
			t.Errorf("%s: near Entry %d's Router %p, want %p", name, i, d.e.rt, rt)
		}
	}
	// The keys in use are distinct, so that the switch's order decides nothing.
	for i := range want {
		for j := range i {
			if rt.near[i].is(rt.near[j].hi, rt.near[j].lo, rt.near[j].port) {
				t.Errorf("%s: near keys %d and %d are equal", name, j, i)
			}
		}
	}
}

func beUint64(b []byte) uint64 {
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x
}

// TestReviewRouterDestinations builds plans on 0 to 8 destinations of
// the pool (both families, ::, 0.0.0.0, one address at several ports,
// 1.2.3.4 and ::1.2.3.4), in several orders, so that every destination
// is near in some and past the fourth in others, and routes to every
// form of every destination, at port 0 and the ports beside its own.
func TestReviewRouterDestinations(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 42))
	plans := 4 // per number of destinations
	if testing.Short() {
		plans = 1
	}
	for n := 0; n <= 8; n++ {
		for i := range plans {
			perm := rnd.Perm(len(reviewPool))
			ds := make([]reviewDest, n)
			for j := range ds {
				ds[j] = reviewPool[perm[j]]
			}
			p := reviewPlan(ds, rnd.IntN)
			name := fmt.Sprintf("%d destinations, plan %d", n, i)
			if err := p.Validate(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			rt, err := p.Router()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			reviewInvariants(t, name, rt)
			reviewCheck(t, name, p, reviewSrcs(p, rnd, 60), rt)
		}
	}
}

// TestReviewRouterEmpty: a plan of no rules (every near key unused)
// routes nothing, not even the invalid address or :: at port 0, which
// match the unused keys.
func TestReviewRouterEmpty(t *testing.T) {
	for _, p := range []*Plan{{}, {Sets: []Set{{Name: "s"}}}} {
		rt, err := p.Router()
		if err != nil {
			t.Fatal(err)
		}
		reviewInvariants(t, "empty", rt)
		reviewCheck(t, "empty", p, reviewSrcs(p, rand.New(rand.NewPCG(1, 1)), 20), rt)
	}
}

// TestReviewRouterOnlyUnspecified: a plan whose entry points are only
// :: (at two ports, kept out of near) and 0.0.0.0: near holds 0.0.0.0
// alone, :: goes through miss, and the invalid destination and :: at
// port 0 match the unused keys, and no rule.
func TestReviewRouterOnlyUnspecified(t *testing.T) {
	ds := []reviewDest{
		{netip.IPv6Unspecified(), 25}, {netip.IPv6Unspecified(), 587}, {netip.IPv4Unspecified(), 25},
	}
	p := reviewPlan(ds, rand.New(rand.NewPCG(5, 5)).IntN)
	rt, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	reviewInvariants(t, "unspecified", rt)
	if rt.near[1].e != nil {
		t.Errorf("near[1] in use: %+v, want only 0.0.0.0 near", rt.near[1])
	}
	reviewCheck(t, "unspecified", p, reviewSrcs(p, rand.New(rand.NewPCG(6, 6)), 100), rt)
	// Every source to :: routes by a rule of ::, never by 0.0.0.0's.
	src := netip.MustParseAddr("2001:db8::99")
	if d := rt.Route(src, netip.IPv6Unspecified(), 25); d != p.Route(src, netip.IPv6Unspecified(), 25) {
		t.Errorf("Route(%v, ::, 25) = %v, plan %v", src, d, p.Route(src, netip.IPv6Unspecified(), 25))
	}
}

// TestReviewRouterRejects: the near keys rely on Plan.Validate keeping
// out the entry points whose words would collide: an IPv4-mapped
// destination (the words of its IPv4 form), a zoned one (the words of
// the unzoned), and port 0 (the unused keys' port).
func TestReviewRouterRejects(t *testing.T) {
	ok := Rule{Name: "ok", Family: 4, DstAddr: netip.MustParseAddr("1.2.3.4"), DstPort: 25, Target: "a", To: netip.MustParseAddrPort("10.0.0.1:25")}
	for _, r := range []Rule{
		{Name: "mapped", Family: 6, DstAddr: netip.MustParseAddr("::ffff:1.2.3.4"), DstPort: 25, Target: "a", To: netip.MustParseAddrPort("[2001:db8::1]:25")},
		{Name: "mapped0", Family: 6, DstAddr: netip.MustParseAddr("::ffff:0.0.0.0"), DstPort: 25, Target: "a", To: netip.MustParseAddrPort("[2001:db8::1]:25")},
		{Name: "zoned", Family: 6, DstAddr: netip.MustParseAddr("fe80::1%eth0"), DstPort: 25, Target: "a", To: netip.MustParseAddrPort("[2001:db8::1]:25")},
		{Name: "zoned0", Family: 6, DstAddr: netip.MustParseAddr("::%eth0"), DstPort: 25, Target: "a", To: netip.MustParseAddrPort("[2001:db8::1]:25")},
		{Name: "port0", Family: 6, DstAddr: netip.MustParseAddr("::"), DstPort: 0, Target: "a", To: netip.MustParseAddrPort("[2001:db8::1]:25")},
		{Name: "port0v4", Family: 4, DstAddr: netip.MustParseAddr("1.2.3.4"), DstPort: 0, Target: "a", To: netip.MustParseAddrPort("10.0.0.1:25")},
	} {
		p := &Plan{Rules: []Rule{ok, r}}
		if rt, err := p.Router(); err == nil {
			t.Errorf("Router accepted rule %s (%v:%d): %v", r.Name, r.DstAddr, r.DstPort, rt)
		}
	}
}

// TestReviewRouterShared builds several Routers from one plan, one after
// another and at once, and copies of one: the repointing of each near
// Entry's fast6 into its own Router must leave the others (and the plan)
// as they were, Entries taken from one Router must answer after the
// others are built, and a Router copied by value (whose Entries still
// read the original's nearIndex) must answer as the plan, also once the
// original is unreachable.
func TestReviewRouterShared(t *testing.T) {
	rnd := rand.New(rand.NewPCG(51, 52))
	ds := []reviewDest{reviewPool[0], reviewPool[2], reviewPool[4], reviewPool[5], reviewPool[1], reviewPool[6], reviewPool[8]}
	p := reviewPlan(ds, rnd.IntN)
	before := slices.Clone(p.Rules)
	first, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	var entries []*Entry
	for _, d := range ds {
		entries = append(entries, first.Entry(d.dst, d.port))
	}
	rts := []*Router{first}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			rt, err := p.Router()
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			rts = append(rts, rt)
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, rt := range rts {
		reviewInvariants(t, fmt.Sprintf("router %d", i), rt)
		for j := range i {
			if &rt.nearIndex[0] == &rts[j].nearIndex[0] || &rt.dests[0] == &rts[j].dests[0] {
				t.Errorf("routers %d and %d share state", j, i)
			}
		}
	}
	if !slices.Equal(before, p.Rules) {
		t.Error("building Routers changed the plan's rules")
	}
	for i, d := range ds {
		if e := first.Entry(d.dst, d.port); e != entries[i] {
			t.Errorf("Entry(%v, %d) = %p after more Routers were built, before %p", d.dst, d.port, e, entries[i])
		}
	}
	srcs := reviewSrcs(p, rnd, 100)
	// A copy of a Router, then the original dropped: the copy's near
	// Entries keep the original's nearIndex alive.
	cp := new(Router)
	*cp = *rts[1]
	rts[1] = nil
	runtime.GC()
	rts = append(rts, cp)
	reviewCheck(t, "shared", p, srcs, rts[0], rts[2], rts[3], rts[4], cp)
	for i, d := range ds {
		src := netip.MustParseAddr("192.0.2.7")
		if d.dst.Is6() {
			src = netip.MustParseAddr("2001:db8:99::7")
		}
		if got, want := entries[i].Route(src), p.Route(src, d.dst, d.port); got != want {
			t.Errorf("Entry(%v, %d) taken first: Route(%v) = %v, plan %v", d.dst, d.port, src, got, want)
		}
	}
}

// TestReviewRouterConcurrent routes from many goroutines at once through
// two Routers of one plan, by Route, Rule and Entry, against Plan.Route
// (run with -race). The read (addrword.SetFast) is not switched here:
// SetFast must not run while others route.
func TestReviewRouterConcurrent(t *testing.T) {
	rnd := rand.New(rand.NewPCG(61, 62))
	ds := []reviewDest{reviewPool[0], reviewPool[2], reviewPool[4], reviewPool[5], reviewPool[3], reviewPool[8]}
	p := reviewPlan(ds, rnd.IntN)
	r1, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	srcs := reviewSrcs(p, rnd, 50)
	dsts := reviewDsts()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rt := r1
			if g%2 == 1 {
				rt = r2
			}
			for i := range len(srcs) * 4 {
				src := srcs[(i*7+g)%len(srcs)]
				d := dsts[(i*13+g*5)%len(dsts)]
				want := p.Route(src, d.dst, d.port)
				if got := rt.Route(src, d.dst, d.port); got != want {
					t.Errorf("goroutine %d: Route(%v, %v, %d) = %v, plan %v", g, src, d.dst, d.port, got, want)
					return
				}
				if got := rt.Entry(d.dst, d.port).Rule(src); got != want.Rule() {
					t.Errorf("goroutine %d: Entry(%v, %d).Rule(%v) = %d, plan %v", g, d.dst, d.port, src, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzReviewRouterPlans builds a plan from the fuzzer's bytes (up to
// eight destinations of the pool, each with one to three rules) and
// routes a source and a destination of its choosing (4 or 16 bytes, or
// the invalid address; zoned or not; any port, 0 included; or one of
// the pool's destinations) through its Router and Entry, both reads.
func FuzzReviewRouterPlans(f *testing.F) {
	f.Add([]byte{3, 0, 1, 2, 4, 5, 6, 7}, []byte{192, 0, 2, 7}, "", []byte{203, 0, 113, 1}, "", uint16(25), uint8(0))
	f.Add([]byte{8, 4, 12, 5, 13, 0, 1, 2, 3, 9, 9, 9}, []byte{0x20, 1, 0xd, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "eth0", []byte{}, "", uint16(0), uint8(1))
	f.Add([]byte{5, 7, 8, 4, 5, 11, 1, 1, 1, 1}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, "", []byte{}, "", uint16(25), uint8(8))
	f.Add([]byte{1, 4}, []byte{}, "", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "x", uint16(25), uint8(0))
	f.Fuzz(func(t *testing.T, pb, sb []byte, sz string, db []byte, dz string, port uint16, pick uint8) {
		at := 0
		next := func(n int) int {
			if at >= len(pb) {
				return 0
			}
			at++
			return int(pb[at-1]) % n
		}
		seen := map[reviewDest]bool{}
		var ds []reviewDest
		for range next(9) {
			d := reviewPool[next(len(reviewPool))]
			if !seen[d] {
				seen[d] = true
				ds = append(ds, d)
			}
		}
		p := reviewPlan(ds, next)
		rt, err := p.Router()
		if err != nil {
			t.Fatalf("plan %+v: %v", p.Rules, err)
		}
		src, dst := fuzzAddr(sb, sz), fuzzAddr(db, dz)
		if pick > 0 && len(ds) > 0 { // one of the plan's destinations, its port or a neighbour
			d := ds[int(pick)%len(ds)]
			dst, port = d.dst, d.port+uint16(pick/64)-1
			if pick&1 == 1 && d.dst.Is4() {
				dst = netip.AddrFrom16(d.dst.As16())
			}
		}
		forEachRead(t, func(read string) {
			want := p.Route(src, dst, port)
			if got := rt.Route(src, dst, port); got != want {
				t.Errorf("%s: Route(%v, %v, %d) = %v, plan %v (rules %+v)", read, src, dst, port, got, want, p.Rules)
			}
			if got := rt.Entry(dst, port).Route(src); got != want {
				t.Errorf("%s: Entry(%v, %d).Route(%v) = %v, plan %v", read, dst, port, src, got, want)
			}
		})
		reviewInvariants(t, "fuzz", rt)
	})
}
