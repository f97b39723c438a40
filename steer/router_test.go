package steer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/internal/addrword"
	"go4.org/netipx"
)

// probes returns addresses that exercise a plan: every edge of every set
// and source range and its neighbours, the ends of both families, random
// addresses, and the IPv4-mapped form of each IPv4 address.
func probes(p *Plan, rnd *rand.Rand, n int) []netip.Addr {
	var out []netip.Addr
	edge := func(a netip.Addr) {
		out = append(out, a)
		if b := a.Prev(); b.IsValid() {
			out = append(out, b)
		}
		if b := a.Next(); b.IsValid() {
			out = append(out, b)
		}
	}
	for _, s := range p.Sets {
		for r := range s.Addrs.AllRanges() {
			edge(r.From())
			edge(r.To())
		}
	}
	for _, r := range p.Rules {
		if r.Src.IsValid() {
			edge(r.Src.From())
			edge(r.Src.To())
		}
	}
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:0:0", "::fffe:ffff:ffff", "2000::", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		edge(netip.MustParseAddr(s))
	}
	for range n {
		out = append(out, randAddr(rnd))
	}
	for _, a := range out {
		if a.Is4() {
			out = append(out, netip.AddrFrom16(a.As16()))
		} else if rnd.IntN(8) == 0 {
			out = append(out, a.WithZone("eth0")) // as a link-local peer is reported
		}
	}
	return append(out, netip.Addr{})
}

func randAddr(rnd *rand.Rand) netip.Addr {
	if rnd.IntN(2) == 0 {
		return u32addr(rnd.Uint32())
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	if rnd.IntN(2) == 0 {
		b[0] = 0x20 | b[0]&0x1f // global unicast, where the data is
	}
	return netip.AddrFrom16(b)
}

// checkRouter compares the Router with the reference on every probe and
// every destination of the plan (and one that is none).
func checkRouter(t *testing.T, name string, p *Plan, rnd *rand.Rand) {
	t.Helper()
	rt, err := p.Router()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(9, 9))
	}
	type dp struct {
		dst  netip.Addr
		port uint16
	}
	// The invalid address has the words of :: (an entry point of some
	// edge plans), which find compares.
	dsts := map[dp]bool{{netip.MustParseAddr("192.0.2.254"), 25}: true, {netip.Addr{}, 25}: true}
	for _, r := range p.Rules {
		dsts[dp{r.DstAddr, r.DstPort}] = true
		dsts[dp{r.DstAddr, r.DstPort + 1}] = true
		if r.DstAddr.Is4() {
			dsts[dp{netip.AddrFrom16(r.DstAddr.As16()), r.DstPort}] = true
			dsts[dp{netip.AddrFrom16(r.DstAddr.As16()).WithZone("eth0"), r.DstPort}] = true
		} else {
			dsts[dp{r.DstAddr.WithZone("eth0"), r.DstPort}] = true // a listener on a link-local entry point
		}
	}
	bad := 0
	srcs := probes(p, rnd, 2000)
	forEachRead(t, func(read string) {
		for _, src := range srcs {
			for d := range dsts {
				want, got := p.Route(src, d.dst, d.port), rt.Route(src, d.dst, d.port)
				e := rt.Entry(d.dst, d.port)
				if eg := e.Route(src); eg != got && bad < 10 {
					bad++
					t.Errorf("%s, %s: Entry(%v, %d).Route(%v) = %+v, Route %+v", name, read, d.dst, d.port, src, eg, got)
				}
				if r, er := rt.Rule(src, d.dst, d.port), e.Rule(src); (r != want.Rule() || er != want.Rule()) && bad < 10 {
					bad++
					t.Errorf("%s, %s: Rule(%v, %v, %d) = %d, Entry's %d, plan %d", name, read, src, d.dst, d.port, r, er, want.Rule())
				}
				if want != got && bad < 10 {
					bad++
					t.Errorf("%s, %s: Route(%v, %v, %d): router %+v, plan %+v", name, read, src, d.dst, d.port, got, want)
				}
			}
		}
	})
}

// forEachRead runs f with the addresses read in place (where
// internal/addrword verified netip.Addr's layout) and through the public
// API (the path a Go with another layout takes), naming the read.
func forEachRead(t testing.TB, f func(read string)) {
	t.Helper()
	for _, fast := range []bool{true, false} {
		restore := addrword.SetFast(fast)
		if fast && !addrword.Fast() {
			t.Log("netip.Addr's words cannot be read in place: only the safe read runs")
		}
		f(fmt.Sprintf("in-place read %v", addrword.Fast()))
		restore()
	}
}

func TestRouterSeed(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	checkRouter(t, "seed", compileSeed(t), rnd)
	checkRouter(t, "hand", seedPlan(t), rnd)
}

// TestRouterShares checks that one table serves every entry point: the
// seed needs a label for the foreign sources and one for each half of the
// english sources, per family (five here: the test world's english IPv6
// networks are all in the lower half), and a third MX adds none.
func TestRouterShares(t *testing.T) {
	for _, tt := range []struct{ name, extra string }{
		{"two MX", ""},
		{"three MX", "  mx3: {ipv4: 203.0.113.3, ipv6: \"2001:db8::3\"}\n"},
	} {
		p := loadString(t, strings.Replace(seedYAML, "groups:", tt.extra+"groups:", 1))
		plan, err := Compile(p, newMemData(testWorld), &Options{Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		rt, err := plan.Router()
		if err != nil {
			t.Fatal(err)
		}
		if rt.tables != 1 || rt.labels != 5 {
			t.Errorf("%s: %v, want 1 table of 5 labels", tt.name, rt)
		}
		checkRouter(t, tt.name, plan, nil)
	}
}

// TestRouterPerDestination forces the fallback for plans whose
// destinations need too many label combinations to share a table.
func TestRouterPerDestination(t *testing.T) {
	defer func(n int) { maxLabels = n }(maxLabels)
	maxLabels = 3
	plan := compileSeed(t)
	rt, err := plan.Router()
	if err != nil {
		t.Fatal(err)
	}
	if rt.tables != 4 {
		t.Errorf("seed with at most 3 labels a table: %v, want 4 tables", rt)
	}
	checkRouter(t, "seed, a table per destination", plan, nil)
	rnd := rand.New(rand.NewPCG(11, 12))
	split, failed := 0, 0
	for i := range 100 {
		p := randomPlan(rnd)
		rt, err := p.Router()
		if errors.Is(err, errLabels) {
			failed++ // one destination alone needs more than 3
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if rt.tables > 1 {
			split++
		}
		checkRouter(t, fmt.Sprintf("random plan %d, at most 3 labels a table", i), p, rnd)
	}
	if split == 0 || failed == 0 {
		t.Errorf("of 100 random plans, %d took a table per destination and %d failed: want some of each", split, failed)
	}
	maxLabels = 1
	if _, err := plan.Router(); !errors.Is(err, errLabels) {
		t.Errorf("seed with at most 1 label a table: %v, want errLabels", err)
	}
}

func TestRouterHash(t *testing.T) {
	src := seedYAML[:len(seedYAML)-len("  - {name: split, split: [a, b]}\n")] +
		"  - {name: split, split: [a, b, foreign], weights: [3, 2, 1], by: hash, seed: 0x2a}\n"
	p := loadString(t, src)
	plan, err := Compile(p, newMemData(testWorld), &Options{Now: testNow, Backends: []Capabilities{Splitter}})
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range []Capabilities{RouterOS, NFTables} {
		if err := plan.Check(be); err == nil {
			t.Errorf("Check(%s) accepted a hash split", be.Name)
		}
	}
	checkRouter(t, "hash", plan, rand.New(rand.NewPCG(3, 4)))
	// The weights hold: about half, a third and a sixth of the sources
	// that reach the split land on a, b and foreign.
	mx1 := netip.MustParseAddr("203.0.113.1")
	count := map[string]int{}
	rnd := rand.New(rand.NewPCG(5, 6))
	english, _ := plan.Set("english")
	rs := english.Addrs.IPv4().Ranges()
	for range 30000 {
		r := rs[rnd.IntN(len(rs))]
		a := u32addr(addrU32(r.From()) + rnd.Uint32N(addrU32(r.To())-addrU32(r.From())+1))
		count[plan.Route(a, mx1, 25).Target()]++
	}
	for tgt, want := range map[string]float64{"a": 0.5, "b": 1.0 / 3, "foreign": 1.0 / 6} {
		if got := float64(count[tgt]) / 30000; got < want-0.02 || got > want+0.02 {
			t.Errorf("hash split share of %s = %.3f, want %.3f", tgt, got, want)
		}
	}
}

// randomPlan builds a valid plan of random sets and rules.
func randomPlan(rnd *rand.Rand) *Plan {
	p := &Plan{}
	for i := range rnd.IntN(4) + 1 {
		var b cidr.Builder
		for range rnd.IntN(40) {
			a := randAddr(rnd)
			bits := a.BitLen() - rnd.IntN(a.BitLen()/2)
			b.AddPrefix(netip.PrefixFrom(a, bits).Masked())
		}
		s, _ := b.Set()
		p.Sets = append(p.Sets, Set{Name: fmt.Sprintf("s%d", i), Addrs: s})
	}
	dsts := []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("2001:db8::1")}
	for i := range rnd.IntN(10) + 1 {
		d := dsts[rnd.IntN(len(dsts))]
		fam, to := 4, netip.MustParseAddrPort("10.0.0.1:25")
		if d.Is6() {
			fam, to = 6, netip.MustParseAddrPort("[2001:db8:10::1]:25")
		}
		r := Rule{Name: fmt.Sprintf("r%d", i), Family: fam, DstAddr: d, DstPort: 25 + uint16(rnd.IntN(2)), Target: fmt.Sprintf("t%d", i), To: to}
		if rnd.IntN(2) == 0 {
			a, b := randAddr(rnd), randAddr(rnd)
			for a.Is4() != (fam == 4) {
				a = randAddr(rnd)
			}
			for b.Is4() != (fam == 4) {
				b = randAddr(rnd)
			}
			if b.Less(a) {
				a, b = b, a
			}
			r.Src = netipx.IPRangeFrom(a, b)
		}
		if rnd.IntN(3) > 0 {
			r.SrcSet, r.SrcSetNot = p.Sets[rnd.IntN(len(p.Sets))].Name, rnd.IntN(2) == 0
		}
		if rnd.IntN(4) == 0 {
			mod := uint32(rnd.IntN(5) + 1)
			lo := rnd.Uint32N(mod)
			r.SrcHash = HashRange{Seed: rnd.Uint32(), Mod: mod, Lo: lo, Hi: lo + rnd.Uint32N(mod-lo)}
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

func TestRouterRandomPlans(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	n := 300
	if testing.Short() {
		n = 30
	}
	for i := range n {
		p := randomPlan(rnd)
		if err := p.Validate(); err != nil {
			t.Fatalf("plan %d: %v", i, err)
		}
		checkRouter(t, fmt.Sprintf("random plan %d", i), p, rnd)
	}
}

func TestRouterAllocs(t *testing.T) {
	plan := compileSeed(t)
	rt, err := plan.Router()
	if err != nil {
		t.Fatal(err)
	}
	src, src6 := netip.MustParseAddr("142.1.1.1"), netip.MustParseAddr("2600::1")
	mx1, mx1v6 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8::1")
	e, e6 := rt.Entry(mx1, 25), rt.Entry(mx1v6, 25)
	if n := testing.AllocsPerRun(100, func() {
		rt.Route(src, mx1, 25)
		rt.Route(src6, mx1v6, 25)
		rt.Rule(src, mx1, 25)
		e.Route(src)
		e6.Rule(src6)
	}); n != 0 {
		t.Errorf("Route allocates %v times", n)
	}
}

// TestJHash checks the hash against lookup3's published values (the
// kernel's jhash is lookup3's hashlittle on a little-endian machine).
func TestJHash(t *testing.T) {
	for _, tt := range []struct {
		key  string
		seed uint32
		want uint32
	}{
		{"", 0, 0xdeadbeef},
		{"", 0xdeadbeef, 0xbd5b7dde},
		{"Four score and seven years ago", 0, 0x17770551},
		{"Four score and seven years ago", 1, 0xcd628161},
	} {
		if got := jhash([]byte(tt.key), tt.seed); got != tt.want {
			t.Errorf("jhash(%q, %#x) = %#x, want %#x", tt.key, tt.seed, got, tt.want)
		}
	}
	h := HashRange{Mod: 2}
	if h.Value(netip.MustParseAddr("192.0.2.1")) != h.Value(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Error("mapped address hashes differently")
	}
}
