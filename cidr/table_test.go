package cidr

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"unsafe"

	"go4.org/netipx"
)

// pair is one (prefix, label) of a test table, normalized as TableBuilder
// does: IPv4-mapped prefixes of length ≥ 96 become IPv4.
type pair struct {
	p     netip.Prefix
	label uint16
}

func normPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// oracle is the brute-force longest-prefix match: the longest prefix holding
// addr wins, and between equal prefixes the later pair.
func oracle(pairs []pair, addr netip.Addr) (uint16, bool) {
	addr = addr.Unmap().WithZone("")
	best, label := -1, uint16(0)
	for _, pr := range pairs {
		p := normPrefix(pr.p)
		if p.Contains(addr) && p.Bits() >= best {
			best, label = p.Bits(), pr.label
		}
	}
	return label, best >= 0
}

var bases6 = []netip.Addr{
	netip.MustParseAddr("::"),
	netip.MustParseAddr("2001:db8::"),
	netip.MustParseAddr("2a00:1450:4001::"),
	netip.MustParseAddr("::ffff:10.0.0.0"),
	netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
}

var bases4 = []netip.Addr{
	netip.MustParseAddr("0.0.0.0"),
	netip.MustParseAddr("10.0.0.0"),
	netip.MustParseAddr("192.168.1.0"),
	netip.MustParseAddr("255.255.255.255"),
}

// randAddrNear returns a base address with its bits from a random position
// on randomized, so that addresses share long prefixes often and trie
// nodes at every level fill up.
func randAddrNear(rnd *rand.Rand, v6 bool) netip.Addr {
	bases, n := bases4, 32
	if v6 {
		bases, n = bases6, 128
	}
	a := bases[rnd.IntN(len(bases))].AsSlice()
	from := rnd.IntN(n + 1)
	if rnd.IntN(2) == 0 {
		from = n - rnd.IntN(min(n, 20)+1) // mostly the last few bits
	}
	for i := from; i < n; i++ {
		if rnd.IntN(2) == 0 {
			a[i/8] ^= 1 << (7 - i%8)
		}
	}
	r, _ := netip.AddrFromSlice(a)
	return r
}

func randPairs(rnd *rand.Rand, n, labels int) []pair {
	out := make([]pair, n)
	for i := range out {
		v6 := rnd.IntN(2) == 0
		a := randAddrNear(rnd, v6)
		max := a.BitLen()
		l := max - rnd.IntN(min(max, 24)+1)
		if rnd.IntN(8) == 0 {
			l = rnd.IntN(max + 1)
		}
		out[i] = pair{netip.PrefixFrom(a, l).Masked(), uint16(rnd.IntN(labels))}
	}
	return out
}

// probes returns the addresses worth asking about: every prefix's first and
// last address and their neighbours, mapped forms, and random addresses.
func probes(rnd *rand.Rand, pairs []pair, n int) []netip.Addr {
	var out []netip.Addr
	for _, pr := range pairs {
		r := netipx.RangeOfPrefix(pr.p)
		for _, a := range []netip.Addr{r.From(), r.To()} {
			out = append(out, a, a.Prev(), a.Next())
		}
	}
	for range n {
		out = append(out, randAddrNear(rnd, rnd.IntN(2) == 0))
	}
	for _, a := range out[:len(out):len(out)] {
		if a.Is4() {
			out = append(out, netip.AddrFrom16(a.As16()))
		}
	}
	var valid []netip.Addr
	for _, a := range out {
		if a.IsValid() {
			valid = append(valid, a)
		}
	}
	return valid
}

func buildTable(t *testing.T, pairs []pair) *Table {
	t.Helper()
	var b TableBuilder
	for _, pr := range pairs {
		b.AddPrefix(pr.p, pr.label)
	}
	tab, err := b.Table()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestTableAgainstOracle(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	for i := range iters {
		n := 1 + rnd.IntN(40)
		if i%10 == 0 {
			n = 100 + rnd.IntN(400) // enough to need nodes below the leaves
		}
		pairs := randPairs(rnd, n, 1+rnd.IntN(5))
		tab := buildTable(t, pairs)
		for _, a := range probes(rnd, pairs, 200) {
			gl, gok := tab.Lookup(a)
			wl, wok := oracle(pairs, a)
			if gl != wl || gok != wok {
				t.Fatalf("iteration %d: Lookup(%v) = %d, %v; want %d, %v\npairs %v", i, a, gl, gok, wl, wok, pairs)
			}
		}
	}
}

// TestTableDense fills single chunks with many runs, so that every level of
// nodes and the split /64s are exercised.
func TestTableDense(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		name      string
		base      string
		from, top int // randomized bits and the prefix lengths used
	}{
		{"v4 /16", "10.1.0.0", 16, 32},
		{"v4 /24", "10.1.2.0", 24, 32},
		{"v6 /16", "2a00::", 16, 64},
		{"v6 /32", "2001:db8::", 32, 64},
		{"v6 /48 to /128", "2001:db8:1::", 48, 128},
		{"v6 low bits", "2001:db8::1:0:0:0", 64, 128},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := netip.MustParseAddr(c.base)
			var pairs []pair
			for range 2000 {
				a := base.AsSlice()
				for i := c.from; i < len(a)*8; i++ {
					if rnd.IntN(2) == 0 {
						a[i/8] ^= 1 << (7 - i%8)
					}
				}
				addr, _ := netip.AddrFromSlice(a)
				l := c.top - rnd.IntN(c.top-c.from+1)
				pairs = append(pairs, pair{netip.PrefixFrom(addr, l).Masked(), uint16(rnd.IntN(300))})
			}
			tab := buildTable(t, pairs)
			for _, a := range probes(rnd, pairs, 5000) {
				gl, gok := tab.Lookup(a)
				wl, wok := oracle(pairs, a)
				if gl != wl || gok != wok {
					t.Fatalf("Lookup(%v) = %d, %v; want %d, %v", a, gl, gok, wl, wok)
				}
			}
		})
	}
}

func TestTableEdges(t *testing.T) {
	pairs := []pair{
		{netip.MustParsePrefix("0.0.0.0/0"), 1},
		{netip.MustParsePrefix("0.0.0.0/32"), 2},
		{netip.MustParsePrefix("255.255.255.255/32"), 3},
		{netip.MustParsePrefix("::/0"), 4},
		{netip.MustParsePrefix("::/128"), 5},
		{netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 6},
		{netip.MustParsePrefix("::ffff:10.0.0.0/104"), 7}, // 10.0.0.0/8
		{netip.MustParsePrefix("10.1.0.0/16"), 8},
		{netip.MustParsePrefix("10.1.0.0/16"), 9}, // the later wins
		{netip.MustParsePrefix("2001:db8::/32"), MaxLabel},
	}
	tab := buildTable(t, pairs)
	for _, c := range []struct {
		addr  string
		label uint16
		ok    bool
	}{
		{"0.0.0.0", 2, true},
		{"0.0.0.1", 1, true},
		{"255.255.255.254", 1, true},
		{"255.255.255.255", 3, true},
		{"::", 5, true},
		{"::1", 4, true},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 4, true},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6, true},
		{"10.2.3.4", 7, true},
		{"::ffff:10.2.3.4", 7, true},
		{"10.1.3.4", 9, true},
		{"::ffff:10.1.3.4", 9, true},
		{"::ffff:11.0.0.0", 1, true}, // IPv4, not under ::/0
		{"2001:db8::1", MaxLabel, true},
		{"2001:db8::1%eth0", MaxLabel, true},
	} {
		l, ok := tab.Lookup(netip.MustParseAddr(c.addr))
		if l != c.label || ok != c.ok {
			t.Errorf("Lookup(%s) = %d, %v; want %d, %v", c.addr, l, ok, c.label, c.ok)
		}
	}
	if _, ok := tab.Lookup(netip.Addr{}); ok {
		t.Error("the zero Addr has a label")
	}
}

func TestTableZeroAndEmpty(t *testing.T) {
	var zero Table
	var b TableBuilder
	empty, err := b.Table()
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range []*Table{&zero, empty} {
		for _, a := range []string{"0.0.0.0", "1.2.3.4", "::", "2001:db8::1", "::ffff:1.2.3.4"} {
			if l, ok := tab.Lookup(netip.MustParseAddr(a)); ok || l != 0 {
				t.Errorf("empty table: Lookup(%s) = %d, %v", a, l, ok)
			}
		}
	}
}

func TestTableBuilderErrors(t *testing.T) {
	var b TableBuilder
	b.AddPrefix(netip.Prefix{}, 1)
	b.AddPrefix(netip.MustParsePrefix("10.0.0.0/8"), MaxLabel+1)
	b.AddRange(netipx.IPRange{}, 1)
	b.AddPrefix(netip.MustParsePrefix("10.0.0.0/8"), 2)
	tab, err := b.Table()
	if err == nil {
		t.Fatal("no error for invalid input")
	}
	if l, ok := tab.Lookup(netip.MustParseAddr("10.1.1.1")); l != 2 || !ok {
		t.Errorf("valid input lost: %d, %v", l, ok)
	}
	if _, err := TableOf(make([]Set, MaxLabel+2)...); err == nil {
		t.Error("TableOf accepted too many sets")
	}
}

// TestTableOfSets checks the Set form against netipx and Set.Contains:
// overlapping sets resolve by the longest prefix of their CIDR lists.
func TestTableOfSets(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	for i := range 500 {
		s1, o1 := build(t, randOps(rnd, 1+rnd.IntN(40)))
		s2, _ := build(t, randOps(rnd, 1+rnd.IntN(40)))
		tab, err := TableOf(s1, s2)
		if err != nil {
			t.Fatal(err)
		}
		var pairs []pair
		for j, s := range []Set{s1, s2} {
			for _, p := range s.Prefixes() {
				pairs = append(pairs, pair{p, uint16(j)})
			}
		}
		one, err := TableOf(s1)
		if err != nil {
			t.Fatal(err)
		}
		c1 := s1.Compile()
		for _, a := range probes(rnd, pairs, 100) {
			gl, gok := tab.Lookup(a)
			wl, wok := oracle(pairs, a)
			if gl != wl || gok != wok {
				t.Fatalf("iteration %d: Lookup(%v) = %d, %v; want %d, %v", i, a, gl, gok, wl, wok)
			}
			want := o1.Contains(a.Unmap())
			if one.Contains(a) != want || s1.Contains(a) != want || c1.Contains(a) != want {
				t.Fatalf("iteration %d: Contains(%v): table %v, set %v, compiled %v; netipx %v",
					i, a, one.Contains(a), s1.Contains(a), c1.Contains(a), want)
			}
		}
	}
}

// TestCompiledSetDense fills single chunks with many ranges, so that the
// compiled form's nodes, the IPv6 levels past the fixed two, full leaves,
// wide leaves, slow /64s and padding are all exercised, and checks
// Contains against the uncompiled Set and netipx.
func TestCompiledSetDense(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	for _, c := range []struct {
		name      string
		base      string
		from, top int // randomized bits and the prefix lengths used
		n         int // prefixes
	}{
		{"v4 /16", "10.1.0.0", 16, 32, 3000},
		{"v4 /24", "10.1.2.0", 24, 32, 200},
		{"v4 /8", "10.0.0.0", 8, 32, 3000},
		{"v4 whole", "0.0.0.0", 0, 32, 3000},
		{"v4 32 ranges", "10.1.0.0", 16, 22, 40},
		{"v6 /16", "2a00::", 16, 64, 2000},
		{"v6 low bits", "2001:db8::1:0:0:0", 64, 128, 2000},
		{"v6 /48s in a /32", "2a00:1::", 32, 48, 3000},
		{"v6 /64s in a /48", "2a00:1:2::", 48, 64, 3000},
		{"v6 split /64s", "2001:db8::", 40, 128, 600},
		{"v6 one /64, few", "2001:db8:1:2::", 64, 128, 3},
		{"v6 one /64, many", "2001:db8:1:2::", 64, 128, 300},
		{"v6 ::/16", "::", 16, 128, 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := netip.MustParseAddr(c.base)
			var b Builder
			var nb netipx.IPSetBuilder
			for range c.n {
				a := base.AsSlice()
				for i := c.from; i < len(a)*8; i++ {
					if rnd.IntN(2) == 0 {
						a[i/8] ^= 1 << (7 - i%8)
					}
				}
				addr, _ := netip.AddrFromSlice(a)
				// Prefixes short enough to cover the chunk are rare:
				// they would hide every other.
				bits := c.top - rnd.IntN(c.top-c.from+1)
				if bits < c.top-8 && rnd.IntN(8) != 0 {
					bits = c.top - rnd.IntN(9)
				}
				p := netip.PrefixFrom(addr, bits).Masked()
				b.AddPrefix(p)
				nb.AddPrefix(p)
			}
			s, err := b.Set()
			if err != nil {
				t.Fatal(err)
			}
			ns, _ := nb.IPSet()
			cs := s.Compile()
			var pairs []pair
			for _, p := range s.Prefixes() {
				pairs = append(pairs, pair{p, 0})
			}
			for _, a := range probes(rnd, pairs, 20000) {
				want := ns.Contains(a.Unmap())
				if got := cs.Contains(a); got != want {
					t.Fatalf("compiled Contains(%v) = %v, want %v", a, got, want)
				}
				if got := s.Contains(a); got != want {
					t.Fatalf("Contains(%v) = %v, want %v", a, got, want)
				}
			}
		})
	}
}

// TestCompiledSetLeaves checks that every leaf of a compiled Set's tables
// is one 64-byte line of sorted keys, and that a leaf's padding, the
// largest key, comes in pairs, so that it leaves every count's parity as
// it is.
func TestCompiledSetLeaves(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 16))
	var b Builder
	for range 20000 {
		v := rnd.Uint32()
		b.AddPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 16+rnd.IntN(17)).Masked())
		var a [16]byte
		a[0], a[1], a[2] = 0x2a, byte(rnd.IntN(4)), byte(rnd.Uint32())
		a[3], a[4] = byte(rnd.Uint32()), byte(rnd.Uint32())
		b.AddPrefix(netip.PrefixFrom(netip.AddrFrom16(a), 24+rnd.IntN(41)).Masked())
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	tab := s.Compile().tab
	checkLeaves(t, "IPv4", tab.v4.keys, leaf4Keys)
	checkLeaves(t, "IPv6", tab.v6.keys, leaf6Keys)
}

func checkLeaves[W uint16 | uint64](t *testing.T, fam string, keys []W, n int) {
	t.Helper()
	if len(keys) < 2*n || len(keys)%n != 0 {
		t.Fatalf("%s: %d keys, not whole leaves, or only the empty one", fam, len(keys))
	}
	if p := uintptr(unsafe.Pointer(&keys[0])); p%64 != 0 {
		t.Errorf("%s: keys at %#x, not on a 64-byte line", fam, p)
	}
	for i := 0; i < len(keys); i += n {
		w := keys[i : i+n]
		if !slices.IsSorted(w) {
			t.Fatalf("%s: leaf %d not sorted: %v", fam, i/n, w)
		}
		if pad := n - slices.Index(w, ^W(0)); slices.Contains(w, ^W(0)) && pad%2 != 0 {
			t.Fatalf("%s: leaf %d has an odd padding: %v", fam, i/n, w)
		}
	}
}

func TestTableRangeAndSetLabels(t *testing.T) {
	var b TableBuilder
	b.AddRange(netipx.MustParseIPRange("10.0.0.1-10.0.1.5"), 1)
	b.AddPrefix(netip.MustParsePrefix("10.0.1.0/24"), 2) // longer than 10.0.0.0/24's pieces
	tab, err := b.Table()
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]uint16{"10.0.0.1": 1, "10.0.0.255": 1, "10.0.1.0": 1, "10.0.1.5": 1, "10.0.1.6": 2} {
		if l, ok := tab.Lookup(netip.MustParseAddr(a)); l != want || !ok {
			t.Errorf("Lookup(%s) = %d, %v; want %d", a, l, ok, want)
		}
	}
}

func TestTableLookupAllocs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	pairs := randPairs(rnd, 500, 10)
	tab := buildTable(t, pairs)
	addrs := probes(rnd, pairs, 100)
	n := testing.AllocsPerRun(10, func() {
		for _, a := range addrs {
			tab.Lookup(a)
		}
	})
	if n != 0 {
		t.Errorf("Lookup allocates %v times per run", n)
	}
}

// BenchmarkTableLookup measures a table of 100,000 random IPv4 and 100,000
// random IPv6 prefixes, with uniform addresses; the
// comparison with peers on real data is in ../benchmarks.
func BenchmarkTableLookup(b *testing.B) {
	rnd := rand.New(rand.NewPCG(11, 12))
	var tb TableBuilder
	for range 100_000 {
		var a [16]byte
		a[0] = 0x20 | byte(rnd.IntN(16))
		for i := 1; i < 8; i++ {
			a[i] = byte(rnd.Uint32())
		}
		tb.AddPrefix(netip.PrefixFrom(netip.AddrFrom16(a), 20+rnd.IntN(29)).Masked(), uint16(rnd.IntN(250)))
		v := rnd.Uint32()
		tb.AddPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 12+rnd.IntN(21)).Masked(), uint16(rnd.IntN(250)))
	}
	tab, err := tb.Table()
	if err != nil {
		b.Fatal(err)
	}
	for _, fam := range []string{"v4", "v6"} {
		addrs := make([]netip.Addr, 1<<16)
		for i := range addrs {
			var a [16]byte
			for j := range a {
				a[j] = byte(rnd.Uint32())
			}
			if fam == "v4" {
				addrs[i] = netip.AddrFrom4([4]byte(a[:4]))
			} else {
				a[0] = 0x20 | a[0]&0x1f
				addrs[i] = netip.AddrFrom16(a)
			}
		}
		b.Run(fam, func(b *testing.B) {
			var sum uint16
			i := 0
			for b.Loop() {
				l, _ := tab.Lookup(addrs[i])
				sum += l
				i = (i + 1) & (len(addrs) - 1)
			}
			_ = sum
		})
	}
}

// FuzzTable decodes the input into (prefix, label) pairs and checks every
// probe address against the brute-force oracle.
func FuzzTable(f *testing.F) {
	f.Add([]byte{4, 10, 0, 0, 0, 8, 1, 4, 10, 1, 0, 0, 16, 2})
	f.Add([]byte{6, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 3, 6, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 128, 4})
	f.Add([]byte{6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0, 104, 5, 4, 255, 255, 255, 255, 32, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		var pairs []pair
		for len(data) > 0 && len(pairs) < 64 {
			fam := data[0]
			n := 4
			if fam&1 == 0 {
				n = 16
			}
			if len(data) < 1+n+2 {
				break
			}
			a, _ := netip.AddrFromSlice(data[1 : 1+n])
			l := int(data[1+n]) % (a.BitLen() + 1)
			pairs = append(pairs, pair{netip.PrefixFrom(a, l).Masked(), uint16(data[2+n]) % 8})
			data = data[3+n:]
		}
		tab := buildTable(t, pairs)
		rnd := rand.New(rand.NewPCG(1, uint64(len(pairs))))
		for _, a := range probes(rnd, pairs, 20) {
			gl, gok := tab.Lookup(a)
			wl, wok := oracle(pairs, a)
			if gl != wl || gok != wok {
				t.Fatalf("Lookup(%v) = %d, %v; want %d, %v\npairs %v", a, gl, gok, wl, wok, pairs)
			}
		}
	})
}

// FuzzCompiledSet decodes the input into prefixes and checks the compiled
// Set's Contains against the uncompiled Set's binary search on every probe.
func FuzzCompiledSet(f *testing.F) {
	f.Add([]byte{4, 10, 0, 0, 0, 8, 4, 10, 1, 0, 0, 16})
	f.Add([]byte{4, 10, 1, 2, 0, 24, 4, 10, 1, 2, 128, 25, 4, 10, 1, 3, 0, 32, 4, 10, 1, 4, 7, 32})
	f.Add([]byte{6, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0, 104})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Builder
		var pairs []pair
		for len(data) > 0 && len(pairs) < 64 {
			n := 4
			if data[0]&1 == 0 {
				n = 16
			}
			if len(data) < 1+n+1 {
				break
			}
			a, _ := netip.AddrFromSlice(data[1 : 1+n])
			p := netip.PrefixFrom(a, int(data[1+n])%(a.BitLen()+1)).Masked()
			b.AddPrefix(p)
			pairs = append(pairs, pair{p, 0})
			data = data[2+n:]
		}
		s, err := b.Set()
		if err != nil {
			t.Fatal(err)
		}
		c := s.Compile()
		rnd := rand.New(rand.NewPCG(2, uint64(len(pairs))))
		for _, a := range probes(rnd, pairs, 20) {
			if got, want := c.Contains(a), s.Contains(a); got != want {
				t.Fatalf("compiled Contains(%v) = %v, the Set's %v\nprefixes %v", a, got, want, pairs)
			}
		}
	})
}
