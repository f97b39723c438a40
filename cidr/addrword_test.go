package cidr

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/internal/addrword"
)

// TestAddrWords runs compiled Sets and Tables with internal/addrword's
// in-place read of netip.Addr on and off (the fallback a different layout
// of netip.Addr would select) against the binary search and the
// brute-force oracle. addrword's own tests check the reads themselves.
func TestAddrWords(t *testing.T) {
	if !addrword.Fast() {
		t.Log("netip.Addr is not laid out as internal/addrword assumes: only the safe path runs")
	}
	rnd := rand.New(rand.NewPCG(21, 22))
	var addrs []netip.Addr
	for range 2000 {
		a := randAddrNear(rnd, rnd.IntN(3) > 0)
		addrs = append(addrs, a, netip.AddrFrom16(a.As16()))
		if a.Is6() {
			addrs = append(addrs, a.WithZone("eth0"))
		}
	}
	addrs = append(addrs, netip.Addr{})
	for _, s := range []string{
		"0.0.0.0", "1.2.3.4", "255.255.255.255", "::", "::1", "::ffff:1.2.3.4",
		"::ffff:0:0", "::1.2.3.4", "2001:db8::1", "fe80::1%eth0", "8000::",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:1::",
	} {
		addrs = append(addrs, netip.MustParseAddr(s))
	}

	pairs := randPairs(rnd, 400, 5)
	var b Builder
	for _, p := range pairs {
		b.AddPrefix(p.p)
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	c := s.Compile()
	tab := buildTable(t, pairs)
	probe := append(probes(rnd, pairs, 5000), addrs...)
	defer addrword.SetFast(addrword.Fast())()
	for _, on := range []bool{false, addrword.Fast()} {
		addrword.SetFast(on)
		for _, a := range probe {
			if got, want := c.Contains(a), s.Contains(a); got != want {
				t.Fatalf("fast read %v: compiled Contains(%v) = %v, the Set's %v", on, a, got, want)
			}
			gl, gok := tab.Lookup(a)
			wl, wok := oracle(pairs, a)
			if !a.IsValid() {
				wl, wok = 0, false
			}
			if gl != wl || gok != wok {
				t.Fatalf("fast read %v: Lookup(%v) = %d, %v; want %d, %v", on, a, gl, gok, wl, wok)
			}
		}
	}
}
