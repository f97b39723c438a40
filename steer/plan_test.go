package steer

import (
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// seedPlan is the seed's setup written out by hand: "not english" to the
// strict server on both MX addresses, then each MX splitting the IPv4 space
// in halves, rotated on the second MX.
func seedPlan(t *testing.T) *Plan {
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24"))
	b.AddPrefix(netip.MustParsePrefix("198.51.100.0/24"))
	english, _ := b.Set()
	mx1, mx2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	a, bb, f := netip.MustParseAddrPort("10.0.0.1:25"), netip.MustParseAddrPort("10.0.0.2:25"), netip.MustParseAddrPort("10.0.0.3:25")
	lower := netipx.MustParseIPRange("0.0.0.0-127.255.255.255")
	upper := netipx.MustParseIPRange("128.0.0.0-255.255.255.255")
	p := &Plan{
		Sets: []Set{{Name: "english", Addrs: english}},
		Rules: []Rule{
			{Name: "foreign-mx1", Family: 4, DstAddr: mx1, DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: f},
			{Name: "foreign-mx2", Family: 4, DstAddr: mx2, DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: f},
			{Name: "split-mx1-0", Family: 4, DstAddr: mx1, DstPort: 25, Src: lower, Target: "a", To: a},
			{Name: "split-mx1-1", Family: 4, DstAddr: mx1, DstPort: 25, Src: upper, Target: "b", To: bb},
			{Name: "split-mx2-0", Family: 4, DstAddr: mx2, DstPort: 25, Src: lower, Target: "b", To: bb},
			{Name: "split-mx2-1", Family: 4, DstAddr: mx2, DstPort: 25, Src: upper, Target: "a", To: a},
		},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlanRoute(t *testing.T) {
	p := seedPlan(t)
	mx1, mx2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	tests := []struct {
		src  string
		dst  netip.Addr
		port uint16
		want string // target, or "" for no match
	}{
		{"192.0.2.7", mx1, 25, "b"},                               // english, upper half
		{"192.0.2.7", mx2, 25, "a"},                               // the other server on the second MX
		{"::ffff:192.0.2.7", mx1, 25, "b"},                        // dual-stack listener form
		{"198.51.100.1", mx1, 25, "b"},                            // english
		{"8.8.8.8", mx1, 25, "foreign"},                           // not english
		{"8.8.8.8", mx2, 25, "foreign"},                           //
		{"192.0.2.7", mx1, 587, ""},                               // other port
		{"192.0.2.7", netip.MustParseAddr("203.0.113.9"), 25, ""}, // not an entry point
	}
	for _, tt := range tests {
		d := p.Route(netip.MustParseAddr(tt.src), tt.dst, tt.port)
		if d.Target() != tt.want || d.Matched() != (tt.want != "") {
			t.Errorf("Route(%s, %v, %d) = %+v, want %q", tt.src, tt.dst, tt.port, d, tt.want)
		}
	}
}

// TestDecision checks what a Decision says of its rule, that the zero
// Decision is the no-match one, and that the Router's Decisions, Route's
// and Decision(i)'s, are the plan's (==).
func TestDecision(t *testing.T) {
	p := seedPlan(t)
	rt, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	mx1 := netip.MustParseAddr("203.0.113.1")
	tests := []struct {
		src    string
		port   uint16
		rule   int
		target string
		to     string // "" for the zero AddrPort
		str    string
	}{
		{"192.0.2.7", 25, 3, "b", "10.0.0.2:25", "rule 3 → b 10.0.0.2:25"},
		{"8.8.8.8", 25, 0, "foreign", "10.0.0.3:25", "rule 0 → foreign 10.0.0.3:25"},
		{"192.0.2.7", 587, -1, "", "", "no rule"},
	}
	for _, tt := range tests {
		src := netip.MustParseAddr(tt.src)
		d := p.Route(src, mx1, tt.port)
		var to netip.AddrPort
		if tt.to != "" {
			to = netip.MustParseAddrPort(tt.to)
		}
		if d.Rule() != tt.rule || d.Matched() != (tt.rule >= 0) || d.Target() != tt.target || d.To() != to || d.String() != tt.str {
			t.Errorf("Route(%s, mx1, %d) = %d %v %q %v %q, want %d %q %v %q", tt.src, tt.port, d.Rule(), d.Matched(), d.Target(), d.To(), d, tt.rule, tt.target, to, tt.str)
		}
		if got := rt.Route(src, mx1, tt.port); got != d {
			t.Errorf("Router.Route(%s, mx1, %d) = %v, plan %v", tt.src, tt.port, got, d)
		}
		if got := rt.Decision(tt.rule); got != d {
			t.Errorf("Router.Decision(%d) = %v, plan %v", tt.rule, got, d)
		}
		if tt.rule < 0 && d != (Decision{}) {
			t.Errorf("no match: %#v, want the zero Decision", d)
		}
	}
	var nilEntry *Entry
	if d := nilEntry.Route(mx1); d != (Decision{}) || d.Rule() != -1 || rt.Decision(len(p.Rules)) != (Decision{}) {
		t.Errorf("nil Entry: %v, Decision out of range: %v; want the zero Decision", d, rt.Decision(len(p.Rules)))
	}
}

func TestPlanValidate(t *testing.T) {
	bad := []func(p *Plan){
		func(p *Plan) { p.Sets = append(p.Sets, p.Sets[0]) },
		func(p *Plan) { p.Sets[0].Name = "English" },
		func(p *Plan) { p.Rules[0].SrcSet = "nope" },
		func(p *Plan) { p.Rules[1].Name = p.Rules[0].Name },
		func(p *Plan) { p.Rules[0].Family = 6 },
		func(p *Plan) { p.Rules[0].To = netip.MustParseAddrPort("[2001:db8::1]:25") },
		func(p *Plan) { p.Rules[2].Src = netipx.MustParseIPRange("::-::1") },
		func(p *Plan) { p.Rules[0].DstPort = 0 },
		func(p *Plan) {
			p.Rules[0].Family = 6
			p.Rules[0].DstAddr = netip.MustParseAddr("fe80::1%eth0") // Route ignores zones: never matched
			p.Rules[0].To = netip.MustParseAddrPort("[2001:db8::3]:25")
		},
		func(p *Plan) {
			p.Rules[0].Family = 6
			p.Rules[0].DstAddr = netip.MustParseAddr("2001:db8::25")
			p.Rules[0].To = netip.MustParseAddrPort("[::ffff:10.0.0.3]:25") // mapped: really IPv4
		},
	}
	for i, mutate := range bad {
		p := seedPlan(t)
		mutate(p)
		if err := p.Validate(); err == nil {
			t.Errorf("mutation %d: Validate accepted a broken plan", i)
		}
	}
}

// TestRouteZones: a destination's zone is ignored as a source's is, by
// Plan.Route and by its Router and Entries alike, for a link-local entry
// point (fe80::1) reached on an interface and for an IPv4 one reported
// IPv4-mapped with a zone.
func TestRouteZones(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1")
	p := seedPlan(t)
	p.Rules = append(p.Rules, Rule{Name: "link-local", Family: 6, DstAddr: ll, DstPort: 25, Target: "a", To: netip.MustParseAddrPort("[2001:db8:10::1]:25")})
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	rt, err := p.Router()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		src, dst string
		rule     int
	}{
		{"2001:db8:99::1", "fe80::1", 6},
		{"2001:db8:99::1", "fe80::1%eth0", 6},
		{"fe80::99%eth0", "fe80::1%eth1", 6}, // zones need not agree: none is compared
		{"192.0.2.7", "fe80::1%eth0", -1},    // families differ
		{"192.0.2.7", "203.0.113.1", 3},
		{"::ffff:192.0.2.7", "::ffff:203.0.113.1%eth0", 3},
		{"::ffff:192.0.2.7%eth0", "::ffff:203.0.113.2%eth0", 5},
		{"2001:db8:99::1", "fe80::2%eth0", -1}, // not an entry point
	} {
		src, dst := netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)
		d := p.Route(src, dst, 25)
		if d.Rule() != tt.rule {
			t.Errorf("Plan.Route(%v, %v, 25) = %v, want rule %d", src, dst, d, tt.rule)
		}
		if got := rt.Route(src, dst, 25); got != d {
			t.Errorf("Router.Route(%v, %v, 25) = %v, plan %v", src, dst, got, d)
		}
		if got := rt.Entry(dst, 25).Route(src); got != d {
			t.Errorf("Router.Entry(%v, 25).Route(%v) = %v, plan %v", dst, src, got, d)
		}
	}
}
