// Package addrword reads a [netip.Addr]'s 128-bit address as two 64-bit
// words, in place where it can.
//
// Why: through the public API ([netip.Addr.As16]) the compiler byte-swaps
// both words, stores them to the stack and loads the bytes back: about ten
// instructions and a store-forwarding wait, on the paths of cidr and steer
// that answer most lookups from the first 16 bits of the address. Read in
// place, those bits are one shift of a register (the compiler keeps a
// netip.Addr argument in registers even when its address is taken this
// way). Measured in benchmarks/README.md, "## Lookup (issue 3)" and
// "## steer (issue 6)".
//
// Safety: netip.Addr is struct{ addr uint128{hi, lo uint64}; z ... }, hi
// and lo being the 16-byte form as two big-endian numbers, so that hi is
// zero for IPv4, IPv4-mapped and invalid addresses. That layout is not a
// promise of net/netip, so the package verifies it at init on addresses of
// every kind, zones included, and a difference of any kind turns the
// in-place read off for the life of the process: [Hi64], [Hi16] and [Lo64]
// then take the public API, with the same results. [Fast] reports which
// path is in use; the package's tests fail when the layout check fails, so
// that a Go release that changed netip.Addr is noticed rather than silently
// slower.
package addrword

import (
	"encoding/binary"
	"net/netip"
	"unsafe"
)

// verified reports that netip.Addr was found laid out as described in the
// package comment; fast, that the reads use it (false in tests that force
// the safe path).
var (
	verified = check()
	fast     = verified
)

// Fast reports whether [Hi64], [Hi16] and [Lo64] read the address in place.
func Fast() bool { return fast }

// SetFast turns the in-place read on (only where the layout was verified)
// or off, and returns a function that restores the previous state. It is
// for tests, which run both paths: it must not be called while other
// goroutines read addresses through the package.
func SetFast(on bool) (restore func()) {
	old := fast
	fast = on && verified
	return func() { fast = old }
}

// layout is what the in-place read assumes netip.Addr's first words are.
type layout struct {
	hi, lo uint64
}

// rawHi returns the first word of addr's memory, assumed to be the high
// 64 bits of its 16-byte form.
func rawHi(addr netip.Addr) uint64 {
	return (*layout)(unsafe.Pointer(&addr)).hi
}

// rawLo returns the second word of addr's memory, assumed to be the low 64
// bits of its 16-byte form.
func rawLo(addr netip.Addr) uint64 {
	return (*layout)(unsafe.Pointer(&addr)).lo
}

// Hi64 returns the high 64 bits of addr's 16-byte form, as a big-endian
// number: zero for IPv4, IPv4-mapped and invalid addresses.
func Hi64(addr netip.Addr) uint64 {
	if fast {
		return rawHi(addr)
	}
	b := addr.As16()
	return binary.BigEndian.Uint64(b[:8])
}

// Hi16 returns the first 16 bits of addr's 16-byte form: zero for IPv4,
// IPv4-mapped and invalid addresses.
func Hi16(addr netip.Addr) uint16 {
	if fast {
		return uint16(rawHi(addr) >> 48)
	}
	// The bytes of As16 where they are stored, not a copy of the array:
	// the copy, a 16-byte load of two 8-byte stores, defeats store
	// forwarding.
	return uint16(addr.As16()[0])<<8 | uint16(addr.As16()[1])
}

// Lo64 returns the low 64 bits of addr's 16-byte form, as a big-endian
// number: 0xffff_xxxx_xxxx for IPv4 and IPv4-mapped addresses (the IPv4
// address in the low 32 bits), zero for the invalid address.
func Lo64(addr netip.Addr) uint64 {
	if fast {
		return rawLo(addr)
	}
	b := addr.As16()
	return binary.BigEndian.Uint64(b[8:])
}

// probes are the addresses check compares both ways.
var probes = []string{
	"0.0.0.0", "1.2.3.4", "255.255.255.255",
	"::", "::1", "::ffff:1.2.3.4", "::ffff:0:0", "::1.2.3.4",
	"2001:db8::1", "2001:db8:1234:5678:9abc:def0:1234:5678",
	"fe80::1%eth0", "fe80::1%1", "ff02::1%x", "2a00:1450::1%zone",
	"8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:1::",
}

// check reports whether netip.Addr's first two words are its 16-byte form
// as two big-endian numbers on every probe (with and without a zone) and
// on the invalid address.
func check() bool {
	if unsafe.Sizeof(netip.Addr{}) < unsafe.Sizeof(layout{}) {
		return false
	}
	one := func(a netip.Addr) bool {
		want := uint64(0)
		if a.Is6() && !a.Is4In6() {
			b := a.As16()
			want = binary.BigEndian.Uint64(b[:8])
		}
		// The whole layout, not only hi: a layout with the words the
		// other way round could agree on hi for some probes.
		b := a.As16()
		l := *(*layout)(unsafe.Pointer(&a))
		if a.IsValid() && (l.hi != binary.BigEndian.Uint64(b[:8]) || l.lo != binary.BigEndian.Uint64(b[8:])) {
			return false
		}
		return rawHi(a) == want
	}
	if !one(netip.Addr{}) {
		return false
	}
	for _, s := range probes {
		a, err := netip.ParseAddr(s)
		if err != nil || !one(a) || !one(a.WithZone("")) || (a.Is6() && !one(a.WithZone("z"))) {
			return false
		}
	}
	return true
}
