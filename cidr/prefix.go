package cidr

import (
	"math/bits"
	"net/netip"
)

// Range-to-prefix decomposition: from lo, repeatedly take the largest block
// that is aligned at lo and does not pass hi. This is the unique minimal
// CIDR cover of a range.

// block4 returns the log2 size of the largest aligned block at lo within hi.
func block4(lo, hi a4) int {
	k := bits.TrailingZeros32(uint32(lo)) // 32 for lo == 0
	if s := bits.Len64(uint64(hi-lo)+1) - 1; s < k {
		k = s
	}
	return k
}

func appendPrefixes4(dst []netip.Prefix, lo, hi a4) []netip.Prefix {
	for {
		k := block4(lo, hi)
		dst = append(dst, netip.PrefixFrom(lo.addr(), 32-k))
		end := uint64(lo) + 1<<uint(k) - 1
		if end >= uint64(hi) {
			return dst
		}
		lo = a4(end + 1)
	}
}

func countPrefixes4(lo, hi a4) int {
	n := 0
	for {
		n++
		k := block4(lo, hi)
		end := uint64(lo) + 1<<uint(k) - 1
		if end >= uint64(hi) {
			return n
		}
		lo = a4(end + 1)
	}
}

func block6(lo, hi a6) int {
	k := lo.tz()
	span := hi.sub(lo)
	s := 128
	if span != max6 {
		s = span.succ().bitLen() - 1
	}
	if s < k {
		k = s
	}
	return k
}

func appendPrefixes6(dst []netip.Prefix, lo, hi a6) []netip.Prefix {
	for {
		k := block6(lo, hi)
		dst = append(dst, netip.PrefixFrom(lo.addr(), 128-k))
		end := lo.or(lowMask6(k))
		if !end.less(hi) {
			return dst
		}
		lo = end.succ()
	}
}

func countPrefixes6(lo, hi a6) int {
	n := 0
	for {
		n++
		end := lo.or(lowMask6(block6(lo, hi)))
		if !end.less(hi) {
			return n
		}
		lo = end.succ()
	}
}

// prefixRange4 returns the range of an IPv4 prefix (host bits ignored).
func prefixRange4(a a4, bitsLen int) r4 {
	if bitsLen <= 0 {
		return r4{0, max4}
	}
	m := a4(^uint32(0) << uint(32-bitsLen))
	lo := a & m
	return r4{lo, lo | ^m}
}

func prefixRange6(a a6, bitsLen int) r6 {
	host := lowMask6(128 - bitsLen)
	lo := a.andNot(host)
	return r6{lo, lo.or(host)}
}
