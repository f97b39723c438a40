package cidr

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAddrWords checks the unsafe read of netip.Addr against As16, and runs
// compiled Sets and Tables with it on and off (the fallback a different
// layout of netip.Addr would select) against the binary search and the
// brute-force oracle.
func TestAddrWords(t *testing.T) {
	if !addrWords {
		t.Log("netip.Addr is not laid out as addrword.go assumes: only the safe path runs")
	}
	if got := checkAddrWords(); got != addrWords {
		t.Fatalf("checkAddrWords() = %v, at init %v", got, addrWords)
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
	for _, s := range addrWordProbes {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	for _, a := range addrs {
		want := top16(a) // zero for IPv4, IPv4-mapped and invalid addresses
		if got := hi16(a); got != want {
			t.Fatalf("hi16(%v) = %#04x, want %#04x", a, got, want)
		}
		b := a.As16()
		if got, want := hi64(a), binary.BigEndian.Uint64(b[:8]); got != want {
			t.Fatalf("hi64(%v) = %#x, want %#x", a, got, want)
		}
		if addrWords {
			if got, want := rawHi(a), binary.BigEndian.Uint64(b[:8]); got != want {
				t.Fatalf("rawHi(%v) = %#x, want %#x", a, got, want)
			}
		}
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
	defer func(on bool) { addrWords = on }(addrWords)
	for _, on := range []bool{false, addrWords} {
		addrWords = on
		for _, a := range probe {
			if got, want := c.Contains(a), s.Contains(a); got != want {
				t.Fatalf("addrWords %v: compiled Contains(%v) = %v, the Set's %v", on, a, got, want)
			}
			gl, gok := tab.Lookup(a)
			wl, wok := oracle(pairs, a)
			if !a.IsValid() {
				wl, wok = 0, false
			}
			if gl != wl || gok != wok {
				t.Fatalf("addrWords %v: Lookup(%v) = %d, %v; want %d, %v", on, a, gl, gok, wl, wok)
			}
		}
	}
}
