package cidr

import (
	"fmt"
	"net/netip"
	"testing"

	"go4.org/netipx"
)

// TestCompiledSetCluster pins the deep path of the compiled IPv6 lookup
// that a path compression (session 5's skip6, tried and not kept) would
// shorten: a few /64s packed into one /57 (their boundaries share all but
// the low 7 bits of the high word), alone in their /16, so that three
// levels of nodes leave a chunk far wider than the cluster, and the
// lookup takes the loop for levels after that. It probes the /57's ends
// and every address that differs from a /64 of the cluster in one bit of
// the high word (the bits above the cluster, inside it, already indexed), with the chunk's state below and above the cluster out, in,
// or different, and with a boundary or a split /64 at either end of the
// cluster.
func TestCompiledSetCluster(t *testing.T) {
	const base = "2001:db8:1234:56" // the cluster's /56, less its last byte
	p := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tests := []struct {
		name   string
		first  int         // the first of six /64s base+"i0::", every 16th
		ranges [][2]string // besides the cluster's /64s
	}{
		{"out around", 1, nil},
		{"in above", 1, [][2]string{{base + "70::", "2001:dff:ffff:ffff:ffff:ffff:ffff:ffff"}}},
		{"in below", 1, [][2]string{{"2001:c00::", base + "07:ffff:ffff:ffff:ffff"}}},
		{"in around", 1, [][2]string{{"2001:c00::", base + "07:ffff:ffff:ffff:ffff"}, {base + "70::", "2001:dff::"}}},
		{"a boundary at the cluster's start", 0, nil},
		{"a boundary at the cluster's end", 1, [][2]string{{base + "7f::", "2001:dff:ffff:ffff:ffff:ffff:ffff:ffff"}}},
		{"a split /64 at the cluster's end", 1, [][2]string{{base + "7f::8000", base + "7f::ffff:ffff"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder
			var probes []uint64
			for i := tt.first; i < tt.first+6; i++ {
				pr := netip.MustParsePrefix(fmt.Sprintf("%s%x0::/64", base, i))
				b.AddPrefix(pr)
				probes = append(probes, key6(pr.Addr()).hi)
			}
			for _, r := range tt.ranges {
				b.AddRange(netipx.IPRangeFrom(p(r[0]), p(r[1])))
			}
			s, err := b.Set()
			if err != nil {
				t.Fatal(err)
			}
			c := s.Compile()
			v := &c.tab.v6
			if d := depth6(t, v, probes[0]); d < 5 {
				t.Fatalf("the cluster's path takes %d levels, want 5 or more", d)
			}
			const lo57, hi57 = 0x20010db812345600, 0x20010db81234567f
			// The ends of the /57 and of each /64,
			// and one bit flipped everywhere.
			his := []uint64{lo57 - 1, lo57, lo57 + 1, hi57 - 1, hi57, hi57 + 1}
			for _, h := range probes {
				his = append(his, h-1, h, h+1)
				for bit := range 64 {
					his = append(his, h^1<<bit)
				}
			}
			for _, h := range his {
				for _, lo := range []uint64{0, 1, 0x8000, ^uint64(0)} {
					a := a6{h, lo}.addr()
					if a.Is4In6() {
						continue
					}
					if got, want := c.Contains(a), search(s.v4, s.v6, a); got != want {
						t.Errorf("compiled Contains(%v) = %v, want %v", a, got, want)
					}
				}
			}
		})
	}
}
