package routerostest

import (
	"net/netip"
	"strings"
)

// parsedAddr is an address-list or NAT address value after validation.
type parsedAddr struct {
	shown  string     // normalised text, as print shows it
	lo, hi netip.Addr // matched range (inclusive); invalid for DNS names
	dns    bool       // a DNS name, resolved into dynamic children
}

// parseListAddress validates and normalises the address of an address-list
// entry in the IPv4 (v6=false) or IPv6 menu. On failure it returns the trap
// message RouterOS gives.
//
// Normalisation (see the package doc): IPv4 /32 prints without a suffix;
// IPv4 ranges that are exactly one CIDR print as that CIDR, single-address
// ranges as the address, others as "a-b"; IPv6 addresses keep /128; host
// bits of a prefix are cleared.
func parseListAddress(s string, v6 bool) (parsedAddr, string) {
	notDNS := "failure: " + s + " is not a valid dns name"
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is6() != v6 || p.Addr().Zone() != "" {
			return parsedAddr{}, notDNS
		}
		// unconfirmed: RouterOS is documented to turn 1.1.1.1/24 into
		// 1.1.1.0/24 for firewall rule addresses; assumed the same here.
		return prefixAddr(p.Masked()), ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is6() != v6 || a.Zone() != "" {
			return parsedAddr{}, notDNS
		}
		return prefixAddr(netip.PrefixFrom(a, a.BitLen())), ""
	}
	if i := strings.IndexByte(s, '-'); i > 0 && !v6 {
		lo, err1 := netip.ParseAddr(s[:i])
		hi, err2 := netip.ParseAddr(s[i+1:])
		if err1 == nil && err2 == nil && lo.Is4() && hi.Is4() {
			if hi.Less(lo) {
				// unconfirmed: the trap RouterOS gives for a reversed range.
				return parsedAddr{}, "invalid value for argument address"
			}
			return rangeAddr(lo, hi), ""
		}
	}
	if validDNSName(s) {
		return parsedAddr{shown: s, dns: true}, ""
	}
	return parsedAddr{}, notDNS
}

// prefixAddr renders a masked prefix the way RouterOS prints it.
func prefixAddr(p netip.Prefix) parsedAddr {
	a := p.Addr()
	pa := parsedAddr{lo: a, hi: lastAddr(p)}
	if a.Is4() && p.Bits() == 32 {
		pa.shown = a.String()
	} else {
		pa.shown = p.String()
	}
	return pa
}

// rangeAddr renders lo-hi, collapsing it to a single CIDR or address when
// the range is exactly that.
func rangeAddr(lo, hi netip.Addr) parsedAddr {
	if lo == hi {
		return prefixAddr(netip.PrefixFrom(lo, lo.BitLen()))
	}
	l, h := ip4(lo), ip4(hi)
	size := uint64(h) - uint64(l) + 1
	if size&(size-1) == 0 && uint64(l)%size == 0 {
		bits := 32
		for s := size; s > 1; s >>= 1 {
			bits--
		}
		return prefixAddr(netip.PrefixFrom(lo, bits))
	}
	// unconfirmed: how RouterOS prints a range that is not one CIDR.
	return parsedAddr{shown: lo.String() + "-" + hi.String(), lo: lo, hi: hi}
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// lastAddr returns the highest address in the (masked) prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		n := ip4(a) | uint32(uint64(1)<<(32-p.Bits())-1)
		b = [4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// validDNSName is a conservative host-name check: dot-separated labels of
// letters, digits, '-' and '_', at least one letter somewhere (so that
// malformed IP literals are not taken for names).
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	letter := false
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
				letter = true
			case c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return letter
}

// parseRuleAddress validates a firewall rule address value (src-address,
// dst-address): an optional leading '!', then an address, prefix or range of
// the menu's family. It returns the normalised text and the range.
func parseRuleAddress(s string, v6 bool) (shown string, neg bool, lo, hi netip.Addr, ok bool) {
	body := strings.TrimPrefix(s, "!")
	neg = body != s
	if i := strings.IndexByte(body, '-'); i > 0 {
		l, err1 := netip.ParseAddr(body[:i])
		h, err2 := netip.ParseAddr(body[i+1:])
		if err1 != nil || err2 != nil || l.Is6() != v6 || h.Is6() != v6 || h.Less(l) || l.Zone() != "" || h.Zone() != "" {
			return "", false, lo, hi, false
		}
		// unconfirmed: rule ranges are printed as given, not collapsed.
		shown = l.String() + "-" + h.String()
		lo, hi = l, h
	} else if p, err := netip.ParsePrefix(body); err == nil && p.Addr().Is6() == v6 && p.Addr().Zone() == "" {
		p = p.Masked()
		shown, lo, hi = p.String(), p.Addr(), lastAddr(p)
	} else if a, err := netip.ParseAddr(body); err == nil && a.Is6() == v6 && a.Zone() == "" {
		shown, lo, hi = a.String(), a, a
	} else {
		return "", false, lo, hi, false
	}
	if neg {
		shown = "!" + shown
	}
	return shown, neg, lo, hi, true
}

// inRange reports lo <= a <= hi.
func inRange(a, lo, hi netip.Addr) bool {
	return !a.Less(lo) && !hi.Less(a)
}
