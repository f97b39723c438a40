package steer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// edgePrefixes are source prefixes where the Router's /16 index and the
// table change behaviour: the whole of each family, ::/16 (where
// IPv4-mapped and invalid sources fall), ::ffff:0:0/96 (held as IPv4),
// a prefix covering it, and the ends of each family.
var edgePrefixes = []string{
	"0.0.0.0/0", "0.0.0.0/16", "0.0.0.0/32", "255.255.0.0/16", "255.255.255.255/32", "10.0.0.0/8",
	"::/0", "::/16", "::/96", "::ffff:0:0/96", "::ffff:10.0.0.0/104", "::/8", "::1/128", "::1:0:0:0/64",
	"ffff::/16", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "2001:db8::/32", "fe80::/10",
}

// crossRanges cross an edge of ::ffff:0:0/96, so that a Set keeps them as
// IPv6 ranges, which match no IPv4 (or IPv4-mapped) source.
var crossRanges = []netipx.IPRange{
	netipx.MustParseIPRange("::fffe:ffff:ff00-::ffff:10.0.0.5"),
	netipx.MustParseIPRange("::ffff:255.255.255.0-::1:0:0:5"),
	netipx.MustParseIPRange("::1-::1:0:0:0"),
}

// TestRouterEdgePlans compares the Router with Plan.Route on random plans
// whose sets and source ranges lie on those edges or cross those of
// ::ffff:0:0/96, with a link-local entry point among the global ones
// (checkRouter also routes to it with a zone, as its listener reports it),
// and the unspecified addresses, :: having the words of the invalid
// address. Up to six destinations: some past the four the Router keeps
// near.
func TestRouterEdgePlans(t *testing.T) {
	rnd := rand.New(rand.NewPCG(21, 22))
	n := 200
	if testing.Short() {
		n = 20
	}
	dsts := []netip.Addr{
		netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::2"),
		netip.MustParseAddr("::"), netip.MustParseAddr("0.0.0.0"),
	}
	for i := range n {
		p := &Plan{}
		for j := range 1 + rnd.IntN(3) {
			var b cidr.Builder
			for range 1 + rnd.IntN(4) {
				b.AddPrefix(netip.MustParsePrefix(edgePrefixes[rnd.IntN(len(edgePrefixes))]))
			}
			if rnd.IntN(3) == 0 {
				b.AddRange(crossRanges[rnd.IntN(len(crossRanges))])
			}
			if rnd.IntN(3) == 0 {
				b.RemovePrefix(netip.MustParsePrefix(edgePrefixes[rnd.IntN(len(edgePrefixes))]))
			}
			s, err := b.Set()
			if err != nil {
				t.Fatal(err)
			}
			p.Sets = append(p.Sets, Set{Name: fmt.Sprintf("s%d", j), Addrs: s})
		}
		for j := range 1 + rnd.IntN(8) {
			d := dsts[rnd.IntN(len(dsts))]
			fam, to := 4, netip.MustParseAddrPort("10.0.0.1:25")
			if d.Is6() {
				fam, to = 6, netip.MustParseAddrPort("[2001:db8:10::1]:25")
			}
			r := Rule{Name: fmt.Sprintf("r%d", j), Family: fam, DstAddr: d, DstPort: 25, Target: fmt.Sprintf("t%d", j), To: to}
			if fam == 6 && rnd.IntN(6) == 0 {
				r.Src = crossRanges[rnd.IntN(len(crossRanges))]
			} else if rnd.IntN(3) == 0 {
				for {
					pr := netip.MustParsePrefix(edgePrefixes[rnd.IntN(len(edgePrefixes))])
					if pr.Addr().Is4() == (fam == 4) && !pr.Addr().Is4In6() {
						r.Src = netipx.RangeOfPrefix(pr)
						break
					}
				}
			}
			if rnd.IntN(4) > 0 {
				r.SrcSet, r.SrcSetNot = p.Sets[rnd.IntN(len(p.Sets))].Name, rnd.IntN(2) == 0
			}
			if rnd.IntN(4) == 0 {
				r.SrcHash = HashRange{Seed: rnd.Uint32(), Mod: 2, Lo: 1, Hi: 1}
			}
			p.Rules = append(p.Rules, r)
		}
		if err := p.Validate(); err != nil {
			t.Logf("plan %d: %v", i, err)
			continue
		}
		checkRouter(t, fmt.Sprintf("edge plan %d", i), p, rnd)
	}
}

// TestRouterMappedEdge is a plan whose IPv6 rule's set holds a range that
// crosses into ::ffff:0:0/96 (a Set keeps it as IPv6, matching no IPv4
// source): its part inside the mapped space must not label the IPv4
// sources of the shared table, which IPv4 rules read.
func TestRouterMappedEdge(t *testing.T) {
	var b cidr.Builder
	b.AddRange(netipx.MustParseIPRange("::fffe:ffff:ffff-::ffff:1.0.0.0"))
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []netipx.IPRange{{}, netipx.MustParseIPRange("::fffe:ffff:ffff-::ffff:1.0.0.0")} {
		p := &Plan{
			Sets: []Set{{Name: "cross", Addrs: s}},
			Rules: []Rule{
				{Name: "v4", Family: 4, DstAddr: netip.MustParseAddr("203.0.113.1"), DstPort: 25, Target: "a", To: netip.MustParseAddrPort("10.0.0.1:25"),
					Src: netipx.MustParseIPRange("1.0.0.0-1.0.0.7")},
				{Name: "v4-rest", Family: 4, DstAddr: netip.MustParseAddr("203.0.113.1"), DstPort: 25, Target: "b", To: netip.MustParseAddrPort("10.0.0.2:25")},
				{Name: "v6", Family: 6, DstAddr: netip.MustParseAddr("2001:db8::1"), DstPort: 25, Target: "c", To: netip.MustParseAddrPort("[2001:db8:10::1]:25"),
					SrcSet: "cross", Src: src},
			},
		}
		checkRouter(t, fmt.Sprintf("crossing set, source range %v", src), p, nil)
		// The IPv4 source at the crossing range's end, in a /16 that the
		// IPv4 rule's source range leaves to the table: rule 0, plain or
		// mapped, and no rule towards the IPv6 entry point.
		rt, err := p.Router()
		if err != nil {
			t.Fatal(err)
		}
		mx4, mx6 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8::1")
		for _, a := range []string{"1.0.0.0", "::ffff:1.0.0.0"} {
			s := netip.MustParseAddr(a)
			if got := rt.Route(s, mx4, 25); got.Rule() != 0 {
				t.Errorf("source range %v: Route(%v, %v) = %v, want rule 0", src, s, mx4, got)
			}
			if got := rt.Route(s, mx6, 25); got.Matched() {
				t.Errorf("source range %v: Route(%v, %v) = %v, want no rule", src, s, mx6, got)
			}
		}
	}
}

// TestRouterDecisionBounds: Router.Decision answers the zero Decision for
// every index that names no rule, including those whose i+1 overflows.
func TestRouterDecisionBounds(t *testing.T) {
	p := seedPlan(t)
	rt, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{-1, -2, len(p.Rules), len(p.Rules) + 1, math.MaxInt, math.MinInt} {
		if d := rt.Decision(i); d != (Decision{}) || d.Matched() || d.Rule() != -1 || d.Target() != "" || d.To().IsValid() {
			t.Errorf("Decision(%d) = %v, want the zero Decision", i, d)
		}
	}
	for i := range p.Rules {
		if d := rt.Decision(i); d.Rule() != i || d.Target() != p.Rules[i].Target || d.To() != p.Rules[i].To {
			t.Errorf("Decision(%d) = %v, want rule %d", i, d, i)
		}
	}
}

// TestRouterManyRules: rules past what a destination's one-byte index
// can name (fastSlow-2) are found through the table, with and without a
// source condition, as are hash chains.
func TestRouterManyRules(t *testing.T) {
	p := &Plan{}
	mx := netip.MustParseAddr("203.0.113.1")
	to := netip.MustParseAddrPort("10.0.0.1:25")
	for i := range 300 {
		r := Rule{Name: fmt.Sprintf("r%d", i), Family: 4, DstAddr: mx, DstPort: uint16(1000 + i), Target: "a", To: to}
		if i%2 == 1 {
			r.Src = netipx.MustParseIPRange("10.0.0.0-10.255.255.255")
		}
		p.Rules = append(p.Rules, r)
	}
	// Port 1299's second rule catches what its first (odd: 10/8 only)
	// does not; port 1298's only rule is number 298.
	p.Rules = append(p.Rules, Rule{Name: "rest", Family: 4, DstAddr: mx, DstPort: 1299, Target: "b", To: to})
	rt, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	srcs := []string{"10.1.2.3", "11.1.2.3", "9.255.255.255", "::ffff:10.0.0.1", "2001:db8::1"}
	forEachRead(t, func(read string) {
		for _, port := range []uint16{1000, 1001, 1253, 1254, 1255, 1298, 1299, 1300} {
			for _, s := range srcs {
				src := netip.MustParseAddr(s)
				want := p.Route(src, mx, port)
				if got := rt.Route(src, mx, port); got != want {
					t.Errorf("%s: Route(%v, port %d) = %v, plan %v", read, src, port, got, want)
				}
				if got := rt.Entry(mx, port).Rule(src); got != want.Rule() {
					t.Errorf("%s: Entry(port %d).Rule(%v) = %d, plan %d", read, port, src, got, want.Rule())
				}
			}
		}
	})
	if d := p.Route(netip.MustParseAddr("11.1.2.3"), mx, 1298); d.Rule() != 298 {
		t.Errorf("plan: port 1298 routed by %v, want rule 298", d)
	}
}
