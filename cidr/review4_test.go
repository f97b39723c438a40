package cidr

// Adversarial tests of the compiled Set's IPv6 lookup as rewritten in
// session 4 (one nodes array of entries holding 64-s, the remaining bits at
// the top of a register, the descent written out in Set.contains, topBudget
// for the nodes under a /16). The contract: a compiled Set's Contains equals
// the uncompiled Set's binary search for every address.
//
// The strongest check here is review4Exhaustive: a compiled Set's answer can
// change only where the lookup reaches another terminal (a chunk's edge) or
// crosses a leaf key, and the true answer only at a range boundary, so that
// probing every such point (and its neighbours) compares the two functions
// on every address. The chunk edges come from a walk of the tables written
// from bits6's doc comment, independent of the lookup's code; random and
// bit-position probes cover a lookup that would not follow the doc.

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/internal/addrword"
	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/oschwald/maxminddb-golang/v2"
	"go4.org/netipx"
)

// review4Set builds a Set from ranges of a6 (lo ≤ hi), failing the test on
// an error.
func review4Set(t testing.TB, rs [][2]a6, prefixes ...string) Set {
	t.Helper()
	var b Builder
	for _, r := range rs {
		b.AddRange(netipx.IPRangeFrom(r[0].addr(), r[1].addr()))
	}
	for _, p := range prefixes {
		b.AddPrefix(netip.MustParsePrefix(p))
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// review4FromBoundaries returns the IPv6 set whose membership flips at each
// of the sorted, distinct boundaries bs, starting out at ::.
func review4FromBoundaries(t testing.TB, bs []a6) Set {
	t.Helper()
	var rs [][2]a6
	for i := 0; i < len(bs); i += 2 {
		hi := max6
		if i+1 < len(bs) {
			hi = bs[i+1].pred()
		}
		rs = append(rs, [2]a6{bs[i], hi})
	}
	return review4Set(t, rs)
}

// review4Compile compiles s and fails unless the result holds a table (a
// Set that kept its binary search would pass every test here vacuously).
func review4Compile(t testing.TB, s Set) Set {
	t.Helper()
	c := s.Compile()
	if c.tab == nil {
		t.Fatalf("Compile kept the binary search for %d IPv6 ranges", len(s.v6))
	}
	return c
}

// review4Walk walks the compiled IPv6 table as bits6's doc describes it and
// returns every point where a lookup's answer may change: the start and end
// of every terminal's chunk, every leaf key and every wide leaf key. It
// fails the test on an entry that breaks the documented layout: a stride
// outside 1..16 or wider than the bits left, a terminal less than two node
// levels below the top, a block or leaf past its array, leaf keys unsorted
// or outside their chunk, a leaf whose real keys are odd in number.
func review4Walk(t testing.TB, v *bits6) (pts []a6, terminals int) {
	t.Helper()
	const pad = ^uint64(0)
	var walk func(n uint32, lo uint64, width uint, depth int)
	walk = func(n uint32, lo uint64, width uint, depth int) {
		if q := n >> node6At; q != 0 {
			s := uint(64 - q)
			off := int(n & node6Mask)
			if s < 1 || s > 16 || s > width {
				t.Fatalf("chunk %016x/%d: node of stride %d", lo, 64-width, s)
			}
			if off+1<<s > len(v.nodes) {
				t.Fatalf("chunk %016x/%d: block %d+%d past %d nodes", lo, 64-width, off, 1<<s, len(v.nodes))
			}
			for i := range 1 << s {
				walk(v.nodes[off+i], lo|uint64(i)<<(width-s), width-s, depth+1)
			}
			return
		}
		terminals++
		if depth < 2 {
			t.Fatalf("chunk %016x/%d: terminal %#x at node depth %d", lo, 64-width, n, depth)
		}
		if n&^(term6In|term6Wide|term6Leaf) != 0 {
			t.Fatalf("chunk %016x/%d: terminal %#x has stray bits", lo, 64-width, n)
		}
		end := lo | (uint64(1)<<width - 1)
		pts = append(pts, a6{lo, 0}, a6{end, pad})
		i := int(n & term6Leaf)
		if n&term6Wide != 0 {
			if i == 0 {
				return // slow: the binary search
			}
			if (i+1)*leaf6Wide > len(v.wide) {
				t.Fatalf("chunk %016x/%d: wide leaf %d past %d", lo, 64-width, i, len(v.wide)/leaf6Wide)
			}
			w := v.wide[i*leaf6Wide : (i+1)*leaf6Wide]
			for j, k := range w {
				if j > 0 && k.less(w[j-1]) {
					t.Fatalf("chunk %016x/%d: wide leaf %d unsorted: %v", lo, 64-width, i, w)
				}
				if k != max6 && (k.hi < lo || k.hi > end) {
					t.Fatalf("chunk %016x/%d: wide leaf %d key %v outside", lo, 64-width, i, k.addr())
				}
				pts = append(pts, k)
			}
			return
		}
		if (i+1)*leaf6Keys > len(v.keys) {
			t.Fatalf("chunk %016x/%d: leaf %d past %d", lo, 64-width, i, len(v.keys)/leaf6Keys)
		}
		w := v.keys[i*leaf6Keys : (i+1)*leaf6Keys]
		nreal := 0
		for j, k := range w {
			if j > 0 && k < w[j-1] {
				t.Fatalf("chunk %016x/%d: leaf %d unsorted: %x", lo, 64-width, i, w)
			}
			if k != pad {
				nreal++
				if k < lo || k > end {
					t.Fatalf("chunk %016x/%d: leaf %d key %016x outside", lo, 64-width, i, k)
				}
			}
			if k != pad {
				pts = append(pts, a6{k, 0})
			}
		}
		// Padding must come in pairs: with an odd number of real keys,
		// addresses in the last /64 (all-ones high bits, which every
		// padding key is ≤) would flip. A real key may itself be all
		// ones, so only a chunk that does not end at the last /64 can
		// be checked this way.
		if end != pad && nreal%2 == 1 {
			t.Fatalf("chunk %016x/%d: leaf %d has %d real keys, odd: %x", lo, 64-width, i, nreal, w)
		}
	}
	pts = append(pts, a6{pad, 0}) // a key equal to the padding
	for c := range 1 << 16 {
		lo := uint64(c) << 48
		e := v.top[c]
		if c == 0 || e > top6Slow || e != v.top[c-1] || v.top[c-1] > top6Slow {
			// A /16 whose state may differ from the one before.
			pts = append(pts, a6{lo, 0}, a6{lo - 1, pad})
		}
		switch {
		case c == 0 && e != top6Slow:
			t.Fatalf("::/16: top entry %#x, not slow", e)
		case e <= top6Slow:
		case e>>node6At == 0:
			t.Fatalf("/16 %04x: top entry %#x neither a state nor a node", c, e)
		default:
			walk(e, lo, 48, 0)
		}
	}
	return pts, terminals
}

// review4Probes returns addresses around the given points: each, its
// neighbours, and its zoned form.
func review4Probes(pts []a6) []netip.Addr {
	out := make([]netip.Addr, 0, 4*len(pts))
	for _, p := range pts {
		out = append(out, p.addr(), p.pred().addr(), p.succ().addr(), p.addr().WithZone("z"))
	}
	return out
}

// review4BitProbes returns, for each range end e of s and each bit k, e
// with its k low bits cleared and set, and their neighbours: the edges of
// every chunk that holds e, at every depth a lookup may stop.
func review4BitProbes(s Set) []netip.Addr {
	var out []netip.Addr
	for _, r := range s.v6 {
		for _, e := range []a6{r.lo, r.hi} {
			for k := 0; k <= 128; k++ {
				m := lowMask6(k)
				for _, p := range []a6{e.andNot(m), e.or(m)} {
					out = append(out, p.addr(), p.pred().addr(), p.succ().addr())
				}
			}
		}
	}
	return out
}

// review4Fixed are addresses of every kind a caller may pass.
var review4Fixed = []string{
	"0.0.0.0", "1.2.3.4", "255.255.255.255", "::", "::1", "::2", "::ffff:1.2.3.4",
	"::ffff:0:0", "::ffff:255.255.255.255", "::fffe:ffff:ffff", "::1:0:0:0", "::1.2.3.4",
	"0:1::", "1::", "2001:db8::1", "fe80::1%eth0", "8000::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	"ffff::", "ffff:ffff:ffff:ffff::", "ffff:ffff:ffff:fffe:ffff:ffff:ffff:ffff",
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
}

// review4Check compares the compiled c with the binary search of s on the
// probes, every invalid, IPv4, IPv4-mapped and zoned form included, with the
// in-place address read on and off. It returns the number of comparisons.
func review4Check(t *testing.T, what string, s, c Set, probes []netip.Addr) int {
	t.Helper()
	probes = append(probes, netip.Addr{})
	for _, f := range review4Fixed {
		a := netip.MustParseAddr(f)
		probes = append(probes, a)
		if a.Is4() {
			probes = append(probes, netip.AddrFrom16(a.As16()), netip.AddrFrom16(a.As16()).WithZone("z"))
		}
	}
	n := 0
	defer addrword.SetFast(addrword.Fast())()
	for _, fast := range []bool{false, addrword.Fast()} {
		addrword.SetFast(fast)
		for _, a := range probes {
			want := search(s.v4, s.v6, a)
			if got := c.Contains(a); got != want {
				t.Fatalf("%s: fast read %v: compiled Contains(%v) = %v, binary search %v", what, fast, a, got, want)
			}
			n++
		}
	}
	return n
}

// review4Exhaustive compiles s and compares it with the binary search at
// every point where either may change (see the file comment), at the bit
// edges of every range end, and on random addresses near the ranges.
func review4Exhaustive(t *testing.T, what string, s Set, rnd *rand.Rand) int {
	t.Helper()
	c := review4Compile(t, s)
	pts, _ := review4Walk(t, &c.tab.v6)
	for _, r := range s.v6 {
		pts = append(pts, r.lo, r.hi)
	}
	probes := review4Probes(pts)
	if len(s.v6) <= 4 {
		probes = append(probes, review4BitProbes(s)...)
	}
	for range 2000 {
		if len(s.v6) == 0 {
			break
		}
		r := s.v6[rnd.IntN(len(s.v6))]
		a := r.lo
		if rnd.IntN(2) == 0 {
			a = r.hi
		}
		// Flip a random run of low bits.
		k := rnd.IntN(129)
		m := lowMask6(k)
		a = a.andNot(m).or(a6{rnd.Uint64(), rnd.Uint64()}.andNot(lowMask6(128).andNot(m)))
		probes = append(probes, a.addr())
	}
	return review4Check(t, what, s, c, probes)
}

// review4Addrs are the IPv6 positions the tables treat differently: the
// ends of the space, ::/16 (slow), the edges of a /16, a /32, a /48 and a
// /64, inside a /64, the middle of the space.
var review4Addrs = []string{
	"::1", "0:1::", "1::", "1::1", "2001:db8::", "2001:db8::1", "2001:db8:0:0:ffff:ffff:ffff:ffff",
	"2001:db8:0:1::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::", "2001:ffff:ffff:ffff::",
	"2002::", "2606:54c3:1fff:ffff:ffff:ffff:ffff:ffff", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	"8000::", "ffff::", "ffff:ffff:ffff:ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
}

// TestReviewCompiledSingleAndAllBut checks a set of one /128 and the whole
// IPv6 space less one address, at every position of review4Addrs, and the
// same with one /64, exhaustively.
func TestReviewCompiledSingleAndAllBut(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 1))
	all := review4Set(t, nil, "::/0")
	for _, x := range review4Addrs {
		a := netip.MustParseAddr(x)
		k := key6(a)
		one := review4Set(t, [][2]a6{{k, k}})
		review4Exhaustive(t, "single "+x, one, rnd)
		review4Exhaustive(t, "all but "+x, all.Difference(one), rnd)
		p64 := review4Set(t, nil, netip.PrefixFrom(a, 64).Masked().String())
		review4Exhaustive(t, "single /64 of "+x, p64, rnd)
		review4Exhaustive(t, "all but the /64 of "+x, all.Difference(p64), rnd)
		// The rest of the space from x, and up to x.
		review4Exhaustive(t, "from "+x, review4Set(t, [][2]a6{{k, max6}}), rnd)
		review4Exhaustive(t, "up to "+x, review4Set(t, [][2]a6{{a6{}, k}}), rnd)
	}
	review4Exhaustive(t, "all", all, rnd)
	review4Exhaustive(t, "empty", Set{}, rnd)
}

// TestReviewCompiledEveryBit puts boundaries at every bit position 0..127:
// for each k, an aligned block of 2^k addresses (its ends differ from its
// neighbours' at bit k), a boundary alone at base|1<<k, a range crossing
// the edge of bit k by one address each way and by half the block, and one
// set of the 128 addresses base^1<<k, all inside and across /16, /32, /48
// and /64 edges.
func TestReviewCompiledEveryBit(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 2))
	for _, b := range []string{"2001:db8:1234:5678:9abc:def0:1234:5678", "2606:54c3:0:0:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "8000::"} {
		base := key6(netip.MustParseAddr(b))
		var flips [][2]a6
		for k := range 128 {
			m := lowMask6(k)
			bit := lowMask6(k + 1).andNot(m)
			lo := base.andNot(lowMask6(k + 1)).or(bit)
			hi := lo.or(m)
			flips = append(flips, [2]a6{base.andNot(bit).or(bit.andNot(base)), base.andNot(bit).or(bit.andNot(base))})
			name := fmt.Sprintf("%s bit %d", b, k)
			review4Exhaustive(t, name+" block", review4Set(t, [][2]a6{{lo, hi}}), rnd)
			review4Exhaustive(t, name+" boundary", review4Set(t, [][2]a6{{lo, max6}}), rnd)
			// lo is an edge of bit k (its k low bits are zero).
			if lo != (a6{}) {
				review4Exhaustive(t, name+" across by 1", review4Set(t, [][2]a6{{lo.pred(), lo}}), rnd)
			}
			if k > 0 {
				half := lowMask6(k - 1).succ()
				review4Exhaustive(t, name+" across by half", review4Set(t, [][2]a6{{lo.sub(half), lo.or(half)}}), rnd)
			}
		}
		review4Exhaustive(t, b+" 128 flips", review4Set(t, flips), rnd)
	}
}

// TestReviewCompiledBudgets puts n boundaries in one chunk for n around
// every budget of the layout: 8 high-64 keys in a leaf (8 and 9), 8 whole
// keys in a wide leaf (8 and 9, past which the /64 is searched), and
// counts whose strides cross the node budgets (bits.Len of 2n and 4n),
// spaced from consecutive /64s (which no stride separates, the deepest
// descents) to a whole /16 apart, at the start and the end of a /16.
func TestReviewCompiledBudgets(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 3))
	ns := []int{1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129}
	if !testing.Short() {
		ns = append(ns, 257, 4097)
	}
	type layout struct {
		name   string
		step   a6 // between boundaries
		lo     a6 // the first
		down   bool
		inside bool // within one /64: wide leaves
	}
	var layouts []layout
	for _, sh := range []int{64, 65, 70, 72, 80, 96, 100, 111, 0, 1, 17, 63} {
		step := lowMask6(sh).succ()
		layouts = append(layouts,
			layout{fmt.Sprintf("step 2^%d up", sh), step, key6(netip.MustParseAddr("2a00::")), false, sh < 64},
			layout{fmt.Sprintf("step 2^%d down", sh), step, key6(netip.MustParseAddr("2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), true, sh < 64},
			layout{fmt.Sprintf("step 2^%d mid", sh), step, key6(netip.MustParseAddr("2a00:1234:5678:9abc::")), false, sh < 64},
		)
	}
	for _, l := range layouts {
		for _, n := range ns {
			if l.inside && n > 20 {
				continue
			}
			bs := make([]a6, n)
			a := l.lo
			for i := range n {
				bs[i] = a
				if l.down {
					a = a.sub(l.step)
				} else {
					a = a.add(l.step)
				}
			}
			if l.down {
				for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
					bs[i], bs[j] = bs[j], bs[i]
				}
			}
			name := fmt.Sprintf("%s n=%d", l.name, n)
			review4Exhaustive(t, name, review4FromBoundaries(t, bs), rnd)
			// The same boundaries in a chunk whose start is in: the
			// start state of every chunk flips.
			bs2 := append([]a6{l.lo.andNot(lowMask6(112))}, bs...)
			if bs2[0].less(bs2[1]) {
				review4Exhaustive(t, name+" from in", review4FromBoundaries(t, bs2), rnd)
			}
		}
	}
	// A split /64 (wide) with n whole boundaries beside it in its chunk.
	for _, n := range []int{0, 1, 6, 7, 8, 9, 10, 16, 17} {
		var rs [][2]a6
		base := key6(netip.MustParseAddr("2a01:1:2:3::"))
		rs = append(rs, [2]a6{base.add(a6{0, 5}), base.add(a6{0, 9})}) // two whole-address keys in the /64 base
		for i := range n {
			h := base.hi + uint64(2+2*i)
			rs = append(rs, [2]a6{{h, 0}, {h, ^uint64(0)}})
		}
		review4Exhaustive(t, fmt.Sprintf("split /64 beside %d /64s", n), review4Set(t, rs), rnd)
	}
}

// TestReviewCompiledSixteens checks /16s of one state beside mixed ones, in
// every order, the first /16 past the slow ::/16 and the last one.
func TestReviewCompiledSixteens(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 4))
	for _, tc := range []struct {
		name string
		p    []string
	}{
		{"in, mixed, out, in", []string{"2607::/16", "2608::/17", "2608:8000::1/128", "260a::/16"}},
		{"mixed between ins", []string{"2607::/16", "2609::/16", "2608:1::/32", "2608:ffff:ffff:ffff::/64"}},
		{"in minus a /128 at each end", []string{"2607::1/128", "2607::2/127", "2607::4/126", "2607::8/125", "2607::10/124", "2607:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"}},
		{"first /16s", []string{"::/16", "1::/16", "2::1/128"}},
		{"::/15 less nothing", []string{"::/15"}},
		{"last /16s", []string{"fffe::/16", "ffff::/17", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}},
		{"every other /16 in 2000::/8", nil},
		{"halves", []string{"2a00::/17", "2a01:8000::/17", "2a02::/18", "2a02:c000::/18"}},
		{"mapped edges", []string{"::fffe:ffff:ffff/128", "::ffff:0:0/96", "::1:0:0:0/128", "::ffff:0:0/95"}},
		{"across mapped", []string{"::fffe:0:0/95"}},
	} {
		var b Builder
		for _, p := range tc.p {
			b.AddPrefix(netip.MustParsePrefix(p))
		}
		if tc.p == nil {
			for i := 0; i < 256; i += 2 {
				b.AddPrefix(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, byte(i)}), 16))
			}
			b.AddPrefix(netip.MustParsePrefix("2011:1:2:3:4::/80"))
		}
		s, err := b.Set()
		if err != nil {
			t.Fatal(err)
		}
		review4Exhaustive(t, tc.name, s, rnd)
		review4Exhaustive(t, tc.name+", complement", s.Complement().IPv6(), rnd)
	}
}

// TestReviewCompiledDense51 packs very many tiny ranges in one /51, as the
// real database does in 2606:54c3::/51: /56 to /64 prefixes, single /64s
// next to each other, /128s and other ranges splitting /64s (wide leaves
// and /64s past them), beside a dense /48 of /64 runs, and checks every
// change point.
func TestReviewCompiledDense51(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 5))
	n := 20000
	if testing.Short() {
		n = 4000
	}
	var rs [][2]a6
	base := key6(netip.MustParseAddr("2606:54c3::"))
	for range n {
		h := base.hi | rnd.Uint64()&(1<<13-1)<<16 | rnd.Uint64()&0xffff
		switch r := rnd.IntN(100); {
		case r < 60: // a /64
			rs = append(rs, [2]a6{{h, 0}, {h, ^uint64(0)}})
		case r < 80: // /56 to /63
			l := 56 + rnd.IntN(8)
			m := uint64(1)<<(64-l) - 1
			rs = append(rs, [2]a6{{h &^ m, 0}, {h | m, ^uint64(0)}})
		case r < 90: // a run of /64s
			m := uint64(rnd.IntN(40))
			rs = append(rs, [2]a6{{h, 0}, {h + m, ^uint64(0)}})
		case r < 97: // a /128 or a small range inside a /64
			lo := rnd.Uint64() >> rnd.IntN(64)
			rs = append(rs, [2]a6{{h, lo}, {h, lo + rnd.Uint64()>>rnd.IntN(64)>>1}})
		default: // many splits in one /64
			for range 2 + rnd.IntN(12) {
				lo := rnd.Uint64()
				rs = append(rs, [2]a6{{h, lo}, {h, lo | rnd.Uint64()>>(32+rnd.IntN(32))}})
			}
		}
	}
	for i := range rs {
		if rs[i][1].less(rs[i][0]) {
			rs[i][1] = rs[i][0]
		}
	}
	s := review4Set(t, rs, "2606:54c3:2000::/52", "2606:54c2:ffff:ffff:ffff:ffff:ffff:ffff/128", "2606::/32")
	review4Exhaustive(t, "dense /51", s, rnd)
	review4Exhaustive(t, "dense /51, complement", s.Complement().IPv6(), rnd)
}

// TestReviewCompiledRandom builds sets of a few ranges whose ends are
// chosen near a few bases with a random run of low bits changed, so that
// ends share prefixes of every length, and checks every change point.
func TestReviewCompiledRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 6))
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	bases := []a6{
		key6(netip.MustParseAddr("2606:54c3::")), key6(netip.MustParseAddr("2a00:1450:4001:800::")),
		key6(netip.MustParseAddr("::ffff:10.0.0.0")), key6(netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
		key6(netip.MustParseAddr("1::")), key6(netip.MustParseAddr("8000::")),
	}
	end := func() a6 {
		b := bases[rnd.IntN(len(bases))]
		k := rnd.IntN(129)
		if rnd.IntN(2) == 0 {
			k = 64 + rnd.IntN(17) - 8 // around the /64 split
		}
		m := lowMask6(k)
		a := b.andNot(m).or(a6{rnd.Uint64(), rnd.Uint64()}.andNot(lowMask6(128).andNot(m)))
		switch rnd.IntN(4) {
		case 0:
			a = a.andNot(lowMask6(rnd.IntN(129)))
		case 1:
			a = a.or(lowMask6(rnd.IntN(129)))
		}
		return a
	}
	for i := range iters {
		var rs [][2]a6
		for range 1 + rnd.IntN(40) {
			lo, hi := end(), end()
			if hi.less(lo) {
				lo, hi = hi, lo
			}
			rs = append(rs, [2]a6{lo, hi})
		}
		var b Builder
		for _, r := range rs {
			b.AddRange(netipx.IPRangeFrom(r[0].addr(), r[1].addr()))
		}
		for range rnd.IntN(4) {
			v := rnd.Uint32()
			b.AddPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 8+rnd.IntN(25)).Masked())
		}
		s, err := b.Set()
		if err != nil {
			t.Fatal(err)
		}
		review4Exhaustive(t, fmt.Sprintf("set %d %v", i, s), s, rnd)
	}
}

// TestReviewCompiledSharedSix checks the compiled Set of the seed policy's
// six countries in the real database: exhaustively at every change point
// of its IPv6 tables, and on random addresses inside the database's IPv6
// networks (a few million, fewer with -short).
func TestReviewCompiledSharedSix(t *testing.T) {
	path := testenv.SharedFile(t, "geo-whois-asn-country.mmdb")
	r, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	six := map[string]bool{"US": true, "CA": true, "GB": true, "AU": true, "NZ": true, "IE": true}
	var b Builder
	var nets []netip.Prefix // every IPv6 network of the database
	for res := range r.Networks() {
		var cc string
		if err := res.DecodePath(&cc, "country_code"); err != nil {
			t.Fatal(err)
		}
		p := res.Prefix()
		if six[cc] {
			b.AddPrefix(p)
		}
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			nets = append(nets, p)
		}
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.v6) < 10000 || len(nets) < 100000 {
		t.Fatalf("%d IPv6 ranges of the six, %d IPv6 networks: not the database expected", len(s.v6), len(nets))
	}
	c := review4Compile(t, s)
	pts, terms := review4Walk(t, &c.tab.v6)
	for _, r := range s.v6 {
		pts = append(pts, r.lo, r.hi)
	}
	if testing.Short() {
		// A seventh of the change points, in 15 s on two loaded cores
		// otherwise.
		for i := range len(pts) / 7 {
			pts[i] = pts[7*i+i%7]
		}
		pts = pts[:len(pts)/7]
	}
	n := review4Check(t, "six, change points", s, c, review4Probes(pts))
	t.Logf("six: %d IPv6 ranges, %d terminals, %d change-point comparisons", len(s.v6), terms, n)

	rnd := rand.New(rand.NewPCG(41, 7))
	count := 3_000_000
	if testing.Short() {
		count = 200_000
	}
	defer addrword.SetFast(addrword.Fast())()
	hist := map[int]int{}
	for i := range count {
		addrword.SetFast(i%2 == 0 && addrword.Fast())
		p := nets[rnd.IntN(len(nets))]
		k := key6(p.Addr())
		m := lowMask6(128 - p.Bits())
		a := k.or(a6{rnd.Uint64(), rnd.Uint64()}.andNot(lowMask6(128).andNot(m))).addr()
		if got, want := c.Contains(a), search6(s.v6, key6(a)); got != want {
			t.Fatalf("fast read %v: compiled Contains(%v) = %v, binary search %v (network %v)", addrword.Fast(), a, got, want, p)
		}
		if i%64 == 0 {
			hist[depth6(t, &c.tab.v6, key6(a).hi)]++
		}
	}
	t.Logf("six: %d random in-table addresses agree; node levels of 1/64 of them: %v", count, hist)
}

// FuzzReviewCompiledRanges decodes the input into IPv6 ranges of any
// alignment (18 bytes each: a 16-byte address, a count of low bits to set
// for the range's end, and a byte choosing how much of it to clear first)
// and compares the compiled Set with the binary search at every change
// point of its tables.
func FuzzReviewCompiledRanges(f *testing.F) {
	f.Add([]byte{0x26, 6, 0x54, 0xc3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 3, 0})
	f.Add([]byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 64, 0x2a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 64, 64})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var rs [][2]a6
		for len(data) >= 18 && len(rs) < 64 {
			var b [16]byte
			copy(b[:], data)
			lo := key6(netip.AddrFrom16(b))
			lo = lo.andNot(lowMask6(int(data[17]) % 129))
			hi := lo.or(lowMask6(int(data[16]) % 129))
			rs = append(rs, [2]a6{lo, hi})
			data = data[18:]
		}
		s := review4Set(t, rs)
		review4Exhaustive(t, "fuzz", s, rand.New(rand.NewPCG(41, uint64(len(rs)))))
	})
}
