package geo

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u32 is an IPv4 address as a number, u128 an IPv6 address. Both implement
// key so that the table code is written once; the lookup hot path is
// written per family without the interface.
type u32 uint32

type u128 struct{ hi, lo uint64 }

type key[K any] interface {
	comparable
	less(K) bool
	succ() K
	isMax() bool
	addr() netip.Addr
}

func (a u32) less(b u32) bool { return a < b }
func (a u32) succ() u32       { return a + 1 }
func (a u32) isMax() bool     { return a == ^u32(0) }
func (a u32) addr() netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }
func (a u128) succ() u128 {
	lo, c := bits.Add64(a.lo, 1, 0)
	return u128{a.hi + c, lo}
}
func (a u128) isMax() bool { return a.hi == ^uint64(0) && a.lo == ^uint64(0) }
func (a u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}

func key4(a netip.Addr) u32 {
	b := a.As4()
	return u32(binary.BigEndian.Uint32(b[:]))
}

func key6(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// prefixBounds returns the first and last address of p as keys; p must be
// valid and, if IPv4-mapped, already unmapped.
func prefixBounds4(p netip.Prefix) (lo, hi u32) {
	lo = key4(p.Addr())
	n := p.Bits()
	if n == 0 {
		return 0, ^u32(0)
	}
	lo &= ^u32(0) << (32 - n)
	return lo, lo | ^u32(0)>>n
}

func prefixBounds6(p netip.Prefix) (lo, hi u128) {
	lo = key6(p.Addr())
	n := p.Bits()
	var mhi, mlo uint64 // host mask
	switch {
	case n == 0:
		mhi, mlo = ^uint64(0), ^uint64(0)
	case n < 64:
		mhi, mlo = ^uint64(0)>>n, ^uint64(0)
	case n < 128:
		mlo = ^uint64(0) >> (n - 64)
	}
	lo = u128{lo.hi &^ mhi, lo.lo &^ mlo}
	return lo, u128{lo.hi | mhi, lo.lo | mlo}
}
