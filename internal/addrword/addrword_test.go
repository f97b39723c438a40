package addrword

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

// TestLayout fails when this Go's netip.Addr is not laid out as the
// package assumes: the package still answers right (TestReads), but every
// lookup of cidr and steer is slower, and the layout check (and the
// package comment) must be brought up to date.
func TestLayout(t *testing.T) {
	if !verified {
		t.Fatalf("%s: netip.Addr is not laid out as internal/addrword assumes; the in-place read is off (correct but slower): update the package", runtime.Version())
	}
	if got := check(); got != verified {
		t.Fatalf("check() = %v, at init %v", got, verified)
	}
	if !Fast() {
		t.Fatal("Fast() = false with the layout verified")
	}
}

// TestSetFast checks that SetFast switches and restores, and never turns
// on a read that was not verified.
func TestSetFast(t *testing.T) {
	restore := SetFast(false)
	if Fast() {
		t.Fatal("Fast() after SetFast(false)")
	}
	inner := SetFast(true)
	if Fast() != verified {
		t.Fatalf("Fast() = %v after SetFast(true), verified %v", Fast(), verified)
	}
	inner()
	if Fast() {
		t.Fatal("Fast() after restoring SetFast(false)")
	}
	restore()
	if Fast() != verified {
		t.Fatalf("Fast() = %v after restoring, verified %v", Fast(), verified)
	}

	defer func(v bool) { verified = v; fast = v }(verified)
	verified, fast = false, false // as on a Go whose netip.Addr differs
	defer SetFast(true)()
	if Fast() {
		t.Fatal("SetFast(true) turned on a read that was not verified")
	}
}

// TestReads compares the reads, both ways (and Words where Fast), with As16 on addresses of every
// kind: IPv4, IPv4-mapped, IPv6 with and without a zone, invalid.
func TestReads(t *testing.T) {
	rnd := rand.New(rand.NewPCG(21, 22))
	addrs := []netip.Addr{{}}
	for _, s := range probes {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	for range 2000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		a := netip.AddrFrom16(b)
		if rnd.IntN(4) == 0 {
			a = netip.AddrFrom4([4]byte(b[12:]))
		}
		addrs = append(addrs, a, netip.AddrFrom16(a.As16()))
		if a.Is6() {
			addrs = append(addrs, a.WithZone("eth0"))
		}
	}
	for _, on := range []bool{true, false} {
		restore := SetFast(on)
		for _, a := range addrs {
			b := a.As16()
			hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
			if got := Hi64(a); got != hi {
				t.Errorf("fast %v: Hi64(%v) = %#x, want %#x", Fast(), a, got, hi)
			}
			if got := Hi16(a); got != uint16(hi>>48) {
				t.Errorf("fast %v: Hi16(%v) = %#x, want %#x", Fast(), a, got, hi>>48)
			}
			if got := Lo64(a); got != lo {
				t.Errorf("fast %v: Lo64(%v) = %#x, want %#x", Fast(), a, got, lo)
			}
			if h, l := Words(a); Fast() && (h != hi || l != lo) {
				t.Errorf("Words(%v) = %#x, %#x, want %#x, %#x", a, h, l, hi, lo)
			}
			if (a.Is4() || a.Is4In6() || !a.IsValid()) && Hi64(a) != 0 {
				t.Errorf("fast %v: Hi64(%v) = %#x, want 0", Fast(), a, Hi64(a))
			}
		}
		restore()
	}
}
