package cidr

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"go4.org/netipx"
)

// edgeAddrs are the addresses where the compiled Set's tables change
// behaviour: the ends of both families, ::/16 (where IPv4, IPv4-mapped
// and invalid addresses fall), the edges of ::ffff:0:0/96, and the edges
// of a /16 and a /64.
var edgeAddrs = []string{
	"0.0.0.0", "0.0.255.255", "0.1.0.0", "10.0.0.0", "10.0.255.255", "255.255.0.0", "255.255.255.255",
	"::", "::1", "::ffff:0:0", "::ffff:ffff:ffff", "::fffe:ffff:ffff", "::1:0:0:0",
	"0:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1::", "2001:db8::", "2001:db8:0:0:ffff:ffff:ffff:ffff",
	"2001:db8:0:1::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "ffff::", "ffff:ffff:ffff:ffff::",
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
}

// randEdgeAddr returns an edge address, moved by a small amount.
func randEdgeAddr(rnd *rand.Rand, v6 bool) netip.Addr {
	for {
		a := netip.MustParseAddr(edgeAddrs[rnd.IntN(len(edgeAddrs))])
		if a.Is6() != v6 {
			continue
		}
		for range rnd.IntN(3) {
			if b := a.Next(); rnd.IntN(2) == 0 && b.IsValid() {
				a = b
			} else if b := a.Prev(); b.IsValid() {
				a = b
			}
		}
		return a
	}
}

// TestCompiledSetEdgeRanges checks the compiled Set against the uncompiled
// one and against netipx, on sets of ranges whose ends lie at the edges
// above, probed at every end and its neighbours in every form a caller may
// pass: plain, IPv4-mapped, zoned, and invalid.
func TestCompiledSetEdgeRanges(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	iters := 600
	if testing.Short() {
		iters = 60
	}
	for i := range iters {
		var b Builder
		var ib netipx.IPSetBuilder
		var ends []netip.Addr
		for range 1 + rnd.IntN(8) {
			v6 := rnd.IntN(3) > 0
			lo, hi := randEdgeAddr(rnd, v6), randEdgeAddr(rnd, v6)
			if hi.Less(lo) {
				lo, hi = hi, lo
			}
			r := netipx.IPRangeFrom(lo, hi)
			b.AddRange(r)
			ib.AddRange(r)
			ends = append(ends, lo, hi)
		}
		switch i % 10 {
		case 0:
			b.AddPrefix(netip.MustParsePrefix("::/0"))
			ib.AddPrefix(netip.MustParsePrefix("::/0"))
		case 1:
			b.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
			ib.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
		}
		s, err := b.Set()
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := ib.IPSet()
		c := s.Compile()
		var probes []netip.Addr
		for _, e := range edgeAddrs {
			ends = append(ends, netip.MustParseAddr(e))
		}
		for _, a := range ends {
			for _, p := range []netip.Addr{a.Prev(), a, a.Next()} {
				if !p.IsValid() {
					continue
				}
				probes = append(probes, p)
				if p.Is4() {
					m := netip.AddrFrom16(p.As16())
					probes = append(probes, m, m.WithZone("eth0"))
				} else {
					probes = append(probes, p.WithZone("eth0"))
				}
			}
		}
		probes = append(probes, netip.Addr{})
		for _, a := range probes {
			got, want := c.Contains(a), s.Contains(a)
			if got != want {
				t.Fatalf("set %d: compiled Contains(%v) = %v, uncompiled %v\nset %v", i, a, got, want, s)
			}
			// netipx neither unmaps nor ignores zones; Set does both,
			// and holds ranges inside ::ffff:0:0/96 as IPv4.
			plain := a.WithZone("")
			if plain.Is4In6() {
				continue
			}
			if ref.Contains(plain) != want && !(plain.Is4() && ref.Contains(netip.AddrFrom16(plain.As16()))) {
				t.Fatalf("set %d: Contains(%v) = %v, netipx %v\nset %v", i, a, want, !want, s)
			}
		}
	}
}

// TestCompiledSetAllAndNothing checks the sets of every and of no address.
func TestCompiledSetAllAndNothing(t *testing.T) {
	var b Builder
	b.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
	b.AddPrefix(netip.MustParsePrefix("::/0"))
	all, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    Set
		in   bool
	}{{"all", all.Compile(), true}, {"none", Set{}.Compile(), false}} {
		for _, e := range edgeAddrs {
			a := netip.MustParseAddr(e)
			for _, x := range []netip.Addr{a, a.WithZone("z"), netip.AddrFrom16(a.As16())} {
				if x.Is4() && a.Is6() {
					continue
				}
				if got := tc.s.Contains(x); got != tc.in {
					t.Errorf("%s: Contains(%v) = %v", tc.name, x, got)
				}
			}
		}
		if tc.s.Contains(netip.Addr{}) {
			t.Errorf("%s: Contains(invalid) = true", tc.name)
		}
	}
}
