package routeros

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

var (
	mx1  = netip.MustParseAddr("203.0.113.1")
	mx2  = netip.MustParseAddr("203.0.113.2")
	mx6  = netip.MustParseAddr("2001:db8:25::1")
	srvA = netip.MustParseAddrPort("10.0.0.1:25")
	srvB = netip.MustParseAddrPort("10.0.0.2:25")
	srvF = netip.MustParseAddrPort("10.0.0.3:25")
	srvG = netip.MustParseAddrPort("[2001:db8:99::3]:25")
	srvH = netip.MustParseAddrPort("[2001:db8:99::1]:25")
)

// testPlan is the seed's shape (steer's seedPlan) around a given english
// set, plus an IPv6 entry point: "not english" to the strict server, then
// each MX splitting the IPv4 space in halves; on IPv6, an odd split range
// that must become several prefix rules.
func testPlan(t testing.TB, english cidr.Set) *steer.Plan {
	lower := netipx.MustParseIPRange("0.0.0.0-127.255.255.255")
	upper := netipx.MustParseIPRange("128.0.0.0-255.255.255.255")
	odd := netipx.MustParseIPRange("2000::-2bff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") // two prefixes
	p := &steer.Plan{
		Sets: []steer.Set{{Name: "english", Addrs: english}},
		Rules: []steer.Rule{
			{Name: "foreign-mx1", Family: 4, DstAddr: mx1, DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: srvF},
			{Name: "foreign-mx2", Family: 4, DstAddr: mx2, DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: srvF},
			{Name: "split-mx1-0", Family: 4, DstAddr: mx1, DstPort: 25, Src: lower, Target: "a", To: srvA},
			{Name: "split-mx1-1", Family: 4, DstAddr: mx1, DstPort: 25, Src: upper, Target: "b", To: srvB},
			{Name: "split-mx2-0", Family: 4, DstAddr: mx2, DstPort: 25, Src: lower, Target: "b", To: srvB},
			{Name: "split-mx2-1", Family: 4, DstAddr: mx2, DstPort: 25, Src: upper, Target: "a", To: srvA},
			{Name: "foreign-mx6", Family: 6, DstAddr: mx6, DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: srvG, Comment: `odd "quoted" $comment?`},
			{Name: "split-mx6", Family: 6, DstAddr: mx6, DstPort: 25, Src: odd, Target: "h", To: srvH},
		},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// randomSet returns n4 random IPv4 prefixes and n6 IPv6 ones, merged.
func randomSet(rnd *rand.Rand, n4, n6 int) cidr.Set {
	var b cidr.Builder
	for range n4 {
		a := netip.AddrFrom4([4]byte{byte(rnd.IntN(224)), byte(rnd.IntN(256)), byte(rnd.IntN(256)), byte(rnd.IntN(256))})
		b.AddPrefix(netip.PrefixFrom(a, 8+rnd.IntN(25)).Masked())
	}
	for range n6 {
		var x [16]byte
		x[0], x[1] = 0x20, byte(rnd.IntN(16))
		for i := 2; i < 8; i++ {
			x[i] = byte(rnd.IntN(256))
		}
		b.AddPrefix(netip.PrefixFrom(netip.AddrFrom16(x), 20+rnd.IntN(45)).Masked())
	}
	s, err := b.Set()
	if err != nil {
		panic(err)
	}
	return s
}

// mutate returns s with about frac of its ranges dropped and as many new
// random prefixes added.
func mutate(rnd *rand.Rand, s cidr.Set, frac float64) cidr.Set {
	var b cidr.Builder
	for _, r := range s.Ranges() {
		if rnd.Float64() >= frac {
			b.AddRange(r)
		}
	}
	n := int(float64(s.NumRanges()) * frac)
	b.AddSet(randomSet(rnd, n, n/10+1))
	out, err := b.Set()
	if err != nil {
		panic(err)
	}
	return out
}

func newSim(t testing.TB, opts routerostest.Options) *routerostest.Server {
	t.Helper()
	srv, err := routerostest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func apply(t testing.TB, r *Router, p *steer.Plan) backend.Report {
	t.Helper()
	rep, err := r.Apply(context.Background(), p, backend.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// sources returns addresses worth routing: every range boundary of the
// plan's sets and rules and their neighbours (up to a cap), and random ones.
func sources(rnd *rand.Rand, p *steer.Plan, nRandom int) []netip.Addr {
	var out []netip.Addr
	edge := func(r netipx.IPRange) {
		out = append(out, r.From(), r.To())
		if a := r.From().Prev(); a.IsValid() {
			out = append(out, a)
		}
		if a := r.To().Next(); a.IsValid() {
			out = append(out, a)
		}
	}
	for _, s := range p.Sets {
		rs := s.Addrs.Ranges()
		step := max(1, len(rs)/2000)
		for i := 0; i < len(rs); i += step {
			edge(rs[i])
		}
	}
	for _, r := range p.Rules {
		if r.Src.IsValid() {
			edge(r.Src)
		}
	}
	for range nRandom {
		out = append(out, netip.AddrFrom4([4]byte{byte(rnd.Uint32()), byte(rnd.Uint32()), byte(rnd.Uint32()), byte(rnd.Uint32())}))
		var x [16]byte
		for i := range x {
			x[i] = byte(rnd.Uint32())
		}
		x[0] = 0x20 | x[0]&0x1f // mostly inside 2000::/3, both sides of the split
		out = append(out, netip.AddrFrom16(x))
	}
	return out
}

// sameRouting proves the router routes every source to every entry point
// of the plan exactly as Plan.Route does.
func sameRouting(t testing.TB, srv *routerostest.Server, p *steer.Plan, srcs []netip.Addr) {
	t.Helper()
	dsts := map[netip.Addr]bool{}
	for _, r := range p.Rules {
		dsts[r.DstAddr] = true
	}
	bad := 0
	for _, src := range srcs {
		for dst := range dsts {
			if dst.Is4() != src.Is4() {
				continue
			}
			for _, port := range []uint16{25, 587} {
				want := p.Route(src, dst, port)
				to, toPort, id, ok := srv.Route(src, dst, port)
				if ok != want.Matched() || ok && netip.AddrPortFrom(to, toPort) != want.To() {
					if bad++; bad <= 5 {
						t.Errorf("route %v -> %v:%d: router %v:%d (rule %s, matched %v), plan %+v", src, dst, port, to, toPort, id, ok, want)
					}
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d routes differ", bad, len(srcs)*len(dsts)*2)
	}
}
