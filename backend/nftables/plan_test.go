package nftables

import (
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// Addresses of the tests, all inside the test's own namespaces: the
// benchmark range 198.18.0.0/15, documentation ranges, private and ULA
// space. They cover both halves of each family: 10/8 and 2001:db8::/32
// below the middle, 198.18/15, 192.0.2/24 and fd00::/8 above it.
var (
	mx1v4, mx2v4, mx3v4 = netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")
	mx1v6, mx2v6        = netip.MustParseAddr("fd00:ffff::1"), netip.MustParseAddr("fd00:ffff::2")
	// The servers' addresses, index 0 a, 1 b, 2 foreign.
	srvV4 = []netip.Addr{netip.MustParseAddr("198.19.253.2"), netip.MustParseAddr("198.19.253.6"), netip.MustParseAddr("198.19.253.10")}
	srvV6 = []netip.Addr{netip.MustParseAddr("fd00:fffe:0::2"), netip.MustParseAddr("fd00:fffe:1::2"), netip.MustParseAddr("fd00:fffe:2::2")}
)

// englishTest is the test's "english" set: ranges and prefixes in both
// halves of both families, and one single address.
func englishTest(t testing.TB, extra ...string) cidr.Set {
	var b cidr.Builder
	for _, s := range append([]string{
		"10.1.0.0/16", "10.3.0.0-10.3.7.255", "10.5.0.0-10.5.2.99", "10.9.9.9",
		"198.18.0.0/16", "192.0.2.128/25",
		"2001:db8:1::/48", "2001:db8:3::-2001:db8:3::7ff",
		"fd00:1::/32", "fd00:2::5-fd00:2::1:4",
	}, extra...) {
		if p, err := netip.ParsePrefix(s); err == nil {
			b.AddPrefix(p)
		} else if r, err := netipx.ParseIPRange(s); err == nil {
			b.AddRange(r)
		} else {
			b.Add(netip.MustParseAddr(s))
		}
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testPlan is the seed's shape for both families, plus a third entry point
// mx3 exercising a non-prefix source range, a positive set match and
// connections no rule steers. The foreign server listens on 2525, so the
// port is translated too.
func testPlan(t testing.TB, english cidr.Set) *steer.Plan {
	to := func(v6 bool, i int) netip.AddrPort {
		port := uint16(25)
		if i == 2 {
			port = 2525
		}
		if v6 {
			return netip.AddrPortFrom(srvV6[i], port)
		}
		return netip.AddrPortFrom(srvV4[i], port)
	}
	names := []string{"a", "b", "foreign"}
	lo4, hi4 := netipx.MustParseIPRange("0.0.0.0-127.255.255.255"), netipx.MustParseIPRange("128.0.0.0-255.255.255.255")
	lo6, hi6 := netipx.MustParseIPRange("::-7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netipx.MustParseIPRange("8000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	var rules []steer.Rule
	add := func(name string, fam int, dst netip.Addr, src netipx.IPRange, set string, not bool, target int) {
		rules = append(rules, steer.Rule{Name: name, Family: fam, DstAddr: dst, DstPort: 25, Src: src,
			SrcSet: set, SrcSetNot: not, Target: names[target], To: to(fam == 6, target)})
	}
	none := netipx.IPRange{}
	add("foreign-mx1", 4, mx1v4, none, "english", true, 2)
	add("foreign-mx2", 4, mx2v4, none, "english", true, 2)
	add("foreign-mx1-v6", 6, mx1v6, none, "english", true, 2)
	add("foreign-mx2-v6", 6, mx2v6, none, "english", true, 2)
	add("split-mx1-0", 4, mx1v4, lo4, "", false, 0)
	add("split-mx1-1", 4, mx1v4, hi4, "", false, 1)
	add("split-mx2-0", 4, mx2v4, lo4, "", false, 1)
	add("split-mx2-1", 4, mx2v4, hi4, "", false, 0)
	add("split-mx1-v6-0", 6, mx1v6, lo6, "", false, 0)
	add("split-mx1-v6-1", 6, mx1v6, hi6, "", false, 1)
	add("split-mx2-v6-0", 6, mx2v6, lo6, "", false, 1)
	add("split-mx2-v6-1", 6, mx2v6, hi6, "", false, 0)
	add("odd-mx3", 4, mx3v4, netipx.MustParseIPRange("10.0.0.0-10.1.200.255"), "", false, 0)
	add("english-mx3", 4, mx3v4, none, "english", false, 1)
	p := &steer.Plan{
		Sets:  []steer.Set{{Name: "english", Addrs: english, Comment: `the six "english" countries`}},
		Rules: rules,
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}
