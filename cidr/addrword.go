package cidr

import (
	"encoding/binary"
	"net/netip"
	"unsafe"
)

// The one place this package reads a netip.Addr's internal words: the high
// 64 bits of an IPv6 address, whose first 16 index the top levels of the
// IPv6 tables and which the compiled Set's IPv6 descent reads whole.
//
// Why: through the public API (As16) the compiler byte-swaps both words,
// stores them to the stack and loads the bytes back, about ten instructions
// and a store-forwarding wait on the path that answers most IPv6 lookups.
// Read in place, the same bits are one shift of a register (the compiler
// keeps a netip.Addr argument in registers even when its address is taken
// this way). Measured in benchmarks/README.md, "## Lookup (issue 3)".
//
// Safety: netip.Addr is struct{ addr uint128{hi, lo uint64}; z ... }, with
// hi the first 8 bytes of the address as a big-endian number and zero for
// IPv4, IPv4-mapped and invalid addresses. That layout is not a promise of
// net/netip, so init verifies it on addresses of every kind, zones
// included, and a difference of any kind turns the unsafe read off for the
// life of the process: hi16 and hi64 then take the public API. TestAddrWords runs
// the tables both ways.

// addrWords reports that netip.Addr was found laid out as described above.
var addrWords = checkAddrWords()

// addrLayout is what the unsafe read assumes netip.Addr's first words are.
type addrLayout struct {
	hi, lo uint64
}

// rawHi returns the first word of addr's memory, assumed to be the high 64
// bits of its 16-byte form.
func rawHi(addr netip.Addr) uint64 {
	return (*addrLayout)(unsafe.Pointer(&addr)).hi
}

// hi16 returns the first 16 bits of addr's 16-byte form: zero for IPv4,
// IPv4-mapped and invalid addresses.
func hi16(addr netip.Addr) uint16 {
	if addrWords {
		return uint16(rawHi(addr) >> 48)
	}
	return top16(addr)
}

// hi64 returns the high 64 bits of addr's 16-byte form.
func hi64(addr netip.Addr) uint64 {
	if addrWords {
		return rawHi(addr)
	}
	b := addr.As16()
	return binary.BigEndian.Uint64(b[:8])
}

// addrWordProbes are the addresses checkAddrWords compares both ways.
var addrWordProbes = []string{
	"0.0.0.0", "1.2.3.4", "255.255.255.255",
	"::", "::1", "::ffff:1.2.3.4", "::ffff:0:0", "::1.2.3.4",
	"2001:db8::1", "2001:db8:1234:5678:9abc:def0:1234:5678",
	"fe80::1%eth0", "fe80::1%1", "ff02::1%x", "2a00:1450::1%zone",
	"8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:1::",
}

func checkAddrWords() bool {
	if unsafe.Sizeof(netip.Addr{}) < unsafe.Sizeof(addrLayout{}) {
		return false
	}
	check := func(a netip.Addr) bool {
		want := uint64(0)
		if a.Is6() && !a.Is4In6() {
			b := a.As16()
			want = binary.BigEndian.Uint64(b[:8])
		}
		// The whole layout, not only hi: a layout with the words the
		// other way round could agree on hi for the probes above.
		b := a.As16()
		l := *(*addrLayout)(unsafe.Pointer(&a))
		if a.IsValid() && (l.hi != binary.BigEndian.Uint64(b[:8]) || l.lo != binary.BigEndian.Uint64(b[8:])) {
			return false
		}
		return rawHi(a) == want
	}
	if !check(netip.Addr{}) {
		return false
	}
	for _, s := range addrWordProbes {
		a, err := netip.ParseAddr(s)
		if err != nil || !check(a) || !check(a.WithZone("")) || (a.Is6() && !check(a.WithZone("z"))) {
			return false
		}
	}
	return true
}
