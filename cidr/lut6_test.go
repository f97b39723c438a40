package cidr

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/internal/addrword"
	"go4.org/netipx"
)

// depth6 returns the number of node levels the compiled IPv6 lookup of hi
// takes below the top, checking each entry on the way.
func depth6(t *testing.T, v *bits6, hi uint64) int {
	t.Helper()
	n := v.top[hi>>48]
	if n <= top6Slow {
		return 0
	}
	used, d := 16, 0
	for n>>node6At != 0 {
		s := 64 - int(n>>node6At)
		used += s
		if s < 1 || s > 16 || used > 64 {
			t.Fatalf("%016x: stride %d at depth %d, %d bits used", hi, s, d, used)
		}
		i := int(n&node6Mask) + int(hi<<(used-s)>>(64-s))
		if i >= len(v.nodes) || int(n&node6Mask)+1<<s > len(v.nodes) {
			t.Fatalf("%016x: block %d+%d past %d nodes", hi, n&node6Mask, 1<<s, len(v.nodes))
		}
		n = v.nodes[i]
		d++
	}
	if d < 2 {
		t.Fatalf("%016x: a terminal %d levels down; the lookup always takes two", hi, d)
	}
	if n&term6Wide != 0 {
		if int(n&term6Leaf+1)*leaf6Wide > len(v.wide) {
			t.Fatalf("%016x: wide leaf %d past %d", hi, n&term6Leaf, len(v.wide)/leaf6Wide)
		}
	} else if int(n&term6Leaf+1)*leaf6Keys > len(v.keys) {
		t.Fatalf("%016x: leaf %d past %d", hi, n&term6Leaf, len(v.keys)/leaf6Keys)
	}
	return d
}

// TestCompiledSetClustered checks the compiled IPv6 lookup where its depth
// varies: runs of /64s packed at the bottom of a wide chunk (which the
// fixed two levels do not separate, so that the lookup takes the
// branch-free third level and the loop after it), /16s of one state next
// to mixed ones, a /16 whose halves are each of one state (first-level
// chunks without boundaries), and the edges of each, against the binary
// search, with the in-place address read on and off.
func TestCompiledSetClustered(t *testing.T) {
	rnd := rand.New(rand.NewPCG(21, 22))
	var b Builder
	for _, p := range []string{"2607::/16", "2608::/17", "2609:8000::/17", "2a00:1::/32", "2a00:2:3::/48", "ffff::/16"} {
		b.AddPrefix(netip.MustParsePrefix(p))
	}
	var ends []netip.Addr
	for range 3000 {
		// /60 to /64 inside 2606:54c3::/51, and a few split /64s.
		var a [16]byte
		a[0], a[1], a[2], a[3] = 0x26, 0x06, 0x54, 0xc3
		v := rnd.Uint32() & (1<<13 - 1)
		a[6], a[7] = byte(v>>8), byte(v)
		a[8] = byte(rnd.Uint32())
		bits := 60 + rnd.IntN(5)
		if rnd.IntN(100) == 0 {
			bits = 72 + rnd.IntN(56)
		}
		p := netip.PrefixFrom(netip.AddrFrom16(a), bits).Masked()
		b.AddPrefix(p)
		ends = append(ends, p.Addr(), netipx.PrefixLastIP(p))
	}
	for range 3000 {
		// /40 to /56 in 2a0b::/16, dense in its first /24.
		var a [16]byte
		a[0], a[1], a[2], a[3] = 0x2a, 0x0b, byte(rnd.IntN(2)), byte(rnd.Uint32())
		a[4], a[5], a[6] = byte(rnd.Uint32()), byte(rnd.Uint32()), byte(rnd.Uint32())
		p := netip.PrefixFrom(netip.AddrFrom16(a), 40+rnd.IntN(17)).Masked()
		b.AddPrefix(p)
		ends = append(ends, p.Addr(), netipx.PrefixLastIP(p))
	}
	for i := range 140 {
		// /48s over 2a0c::/16, and /62 to /64 packed in one /56 of it.
		var a [16]byte
		a[0], a[1], a[2], a[3], a[4], a[5] = 0x2a, 0x0c, byte(rnd.Uint32()), byte(rnd.Uint32()), byte(rnd.Uint32()), byte(rnd.Uint32())
		bits := 48
		if i < 40 {
			a[2], a[3], a[4], a[5], a[6], a[7] = 0, 5, 0, 6, 7, byte(rnd.Uint32())
			bits = 62 + rnd.IntN(3)
		}
		p := netip.PrefixFrom(netip.AddrFrom16(a), bits).Masked()
		b.AddPrefix(p)
		ends = append(ends, p.Addr(), netipx.PrefixLastIP(p))
	}
	for range 10 {
		// Ten /48s in one /32, alone in their /16.
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x2a, 0x0d, 0, 1, byte(rnd.Uint32()), byte(rnd.Uint32())}), 48)
		b.AddPrefix(p)
		ends = append(ends, p.Addr(), netipx.PrefixLastIP(p))
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Ranges() {
		ends = append(ends, r.From(), r.To())
	}
	for _, e := range []string{"2606::", "2606:ffff:ffff:ffff::", "2608:7fff:ffff:ffff::", "2608:8000::", "2609::", "260a::"} {
		ends = append(ends, netip.MustParseAddr(e))
	}
	c := s.Compile()
	hist := map[int]int{}
	for _, fast := range []bool{true, false} {
		restore := addrword.SetFast(fast && addrword.Fast())
		for _, e := range ends {
			for _, a := range []netip.Addr{e.Prev(), e, e.Next()} {
				if !a.IsValid() || a.Is4() {
					continue
				}
				hist[depth6(t, &c.tab.v6, key6(a).hi)]++
				if got, want := c.Contains(a), search(s.v4, s.v6, a); got != want {
					restore()
					t.Fatalf("fast read %v: compiled Contains(%v) = %v, want %v", fast, a, got, want)
				}
			}
		}
		restore()
	}
	// The test means something only if every kind of descent was taken.
	for _, d := range []int{0, 2, 3, 4} {
		if hist[d] == 0 {
			t.Errorf("no probe took %d levels: %v", d, hist)
		}
	}
}
