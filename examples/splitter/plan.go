package main

import (
	"fmt"
	"net/netip"

	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// servers are the three mail servers of the seed's setup, for one family.
type servers struct{ a, b, strict netip.AddrPort }

// seedPlan builds the seed's policy until steer's policy loader lands:
// on every MX entry point, senders outside english go to the strict
// server; English senders are split at split (the first address of the
// upper half) between a and b, rotated on every second MX of a family so
// that a sender retrying the other MX reaches the other server. Each entry
// point uses the servers of its own family (byFamily[4] or [6]).
func seedPlan(mxs []netip.AddrPort, english cidr.Set, byFamily map[int]servers, split map[int]netip.Addr) (*steer.Plan, error) {
	p := &steer.Plan{Sets: []steer.Set{{Name: "english", Addrs: english, Comment: "senders the lenient servers take"}}}
	nth := map[int]int{}
	for i, mx := range mxs {
		fam := 4
		if !mx.Addr().Is4() {
			fam = 6
		}
		sv, ok := byFamily[fam]
		if !ok {
			return nil, fmt.Errorf("entry point %v: no IPv%d servers given", mx, fam)
		}
		lo, hi := halves(fam, split[fam])
		x, y, xn, yn := sv.a, sv.b, "a", "b"
		if nth[fam]%2 == 1 {
			x, y, xn, yn = sv.b, sv.a, "b", "a"
		}
		nth[fam]++
		n := fmt.Sprintf("mx%d", i+1)
		at := func(r steer.Rule) steer.Rule {
			r.Family, r.DstAddr, r.DstPort = fam, mx.Addr(), mx.Port()
			return r
		}
		p.Rules = append(p.Rules,
			at(steer.Rule{Name: n + "-foreign", SrcSet: "english", SrcSetNot: true, Target: "strict", To: sv.strict, Comment: "not english"}),
			at(steer.Rule{Name: n + "-lower", Src: lo, Target: xn, To: x}),
			at(steer.Rule{Name: n + "-upper", Src: hi, Target: yn, To: y}),
		)
	}
	return p, p.Validate()
}

// halves splits a family's address space at split.
func halves(fam int, split netip.Addr) (lo, hi netipx.IPRange) {
	first, last := netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if fam == 6 {
		first, last = netip.IPv6Unspecified(), netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
	}
	return netipx.IPRangeFrom(first, split.Prev()), netipx.IPRangeFrom(split, last)
}
