package cidr

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// a4 is an IPv4 address as a number; a6 an IPv6 address as a 128-bit number.
// Both implement key so that the set algebra is written once.
type a4 uint32

type a6 struct{ hi, lo uint64 }

// key is the arithmetic the set algebra needs of an address.
type key[K any] interface {
	comparable
	less(K) bool
	succ() K // +1, wrapping
	pred() K // −1, wrapping
}

func (a a4) less(b a4) bool { return a < b }
func (a a4) succ() a4       { return a + 1 }
func (a a4) pred() a4       { return a - 1 }

func (a a6) less(b a6) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }
func (a a6) succ() a6 {
	lo, c := bits.Add64(a.lo, 1, 0)
	return a6{a.hi + c, lo}
}
func (a a6) pred() a6 {
	lo, b := bits.Sub64(a.lo, 1, 0)
	return a6{a.hi - b, lo}
}

const max4 = a4(^uint32(0))

var max6 = a6{^uint64(0), ^uint64(0)}

func (a a6) sub(b a6) a6 {
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	return a6{a.hi - b.hi - br, lo}
}

// tz is the number of trailing zero bits, 128 for zero.
func (a a6) tz() int {
	if a.lo != 0 {
		return bits.TrailingZeros64(a.lo)
	}
	if a.hi != 0 {
		return 64 + bits.TrailingZeros64(a.hi)
	}
	return 128
}

// bitLen is the minimum number of bits needed to represent a.
func (a a6) bitLen() int {
	if a.hi != 0 {
		return 64 + bits.Len64(a.hi)
	}
	return bits.Len64(a.lo)
}

// lowMask returns a value with the n lowest bits set (0 ≤ n ≤ 128).
func lowMask6(n int) a6 {
	switch {
	case n <= 0:
		return a6{}
	case n < 64:
		return a6{0, 1<<uint(n) - 1}
	case n < 128:
		return a6{1<<uint(n-64) - 1, ^uint64(0)}
	}
	return max6
}

func (a a6) or(b a6) a6 { return a6{a.hi | b.hi, a.lo | b.lo} }

func (a a6) andNot(b a6) a6 { return a6{a.hi &^ b.hi, a.lo &^ b.lo} }

// from4 and from6 are key4 and key6 (table.go), which read the address
// without the array copy that stalls store forwarding.
func from4(a netip.Addr) a4 { return key4(a) }

func from6(a netip.Addr) a6 { return key6(a) }

func (a a4) addr() netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

func (a a6) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}
