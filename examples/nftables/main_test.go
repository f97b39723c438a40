package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/cidr"
)

func TestRender(t *testing.T) {
	var out, errb strings.Builder
	err := run(context.Background(), []string{"-db", "../../geo/testdata/sample.mmdb", "-english", "US,GB",
		"-mx", "203.0.113.1,2001:db8::25", "-targets", "10.0.0.1:25,10.0.0.2:25,10.0.0.3:25,[fd00::1]:25,[fd00::2]:25,[fd00::3]:25"}, &out, &errb)
	if err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	for _, want := range []string{
		"set english_v4 {", "set english_v6 {",
		`ip daddr 203.0.113.1 tcp dport 25 ip saddr != @english_v4 counter dnat ip to 10.0.0.3:25 comment "foreign-mx1"`,
		`ip6 daddr 2001:db8::25 tcp dport 25 ip6 saddr 8000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff counter dnat ip6 to [fd00::1]:25 comment "split-mx2-1"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The foreign rules come before every split rule.
	if i, j := strings.LastIndex(out.String(), "foreign-mx"), strings.Index(out.String(), "split-mx"); i > j {
		t.Error("a split rule precedes a foreign rule")
	}
}

func TestSeedPlanErrors(t *testing.T) {
	for _, c := range [][2]string{
		{"203.0.113.1", "10.0.0.1:25,10.0.0.2:25"},             // two servers
		{"2001:db8::1", "10.0.0.1:25,10.0.0.2:25,10.0.0.3:25"}, // no IPv6 servers
		{"nonsense", "10.0.0.1:25,10.0.0.2:25,10.0.0.3:25"},    // bad MX
		{"203.0.113.1", "10.0.0.1,10.0.0.2:25,10.0.0.3:25"},    // no port
	} {
		if _, err := seedPlan(englishForTest(), c[0], c[1]); err == nil {
			t.Errorf("seedPlan(%q, %q): no error", c[0], c[1])
		}
	}
	p, err := seedPlan(englishForTest(), "203.0.113.1,203.0.113.2", "10.0.0.1:25,10.0.0.2:25,10.0.0.3:25")
	if err != nil {
		t.Fatal(err)
	}
	// The rotated split: the same source goes to a on one MX and b on the other.
	src := netip.MustParseAddr("1.2.3.4") // english below, lower half
	if a, b := p.Route(src, netip.MustParseAddr("203.0.113.1"), 25), p.Route(src, netip.MustParseAddr("203.0.113.2"), 25); a.Target != "a" || b.Target != "b" {
		t.Errorf("split: %s on mx1, %s on mx2; want a, b", a.Target, b.Target)
	}
	if d := p.Route(netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("203.0.113.1"), 25); d.Target != "foreign" {
		t.Errorf("non-english source went to %q", d.Target)
	}
}

func englishForTest() cidr.Set {
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("1.0.0.0/8"))
	s, _ := b.Set()
	return s
}
