package cidr

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"go4.org/netipx"
)

// op is one builder operation of a random test program.
type op struct {
	add bool
	p   netip.Prefix
	r   netipx.IPRange
}

// randAddr returns an address from a small universe so that random
// operations overlap often: IPv4 inside 10.0.0.0/16, IPv6 inside
// 2001:db8::/112, with a few IPv4-mapped and edge-of-space addresses.
func randAddr(rnd *rand.Rand, v6 bool) netip.Addr {
	switch rnd.IntN(40) {
	case 0:
		if v6 {
			return netip.IPv6Unspecified()
		}
		return netip.IPv4Unspecified()
	case 1:
		if v6 {
			return netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
		}
		return netip.MustParseAddr("255.255.255.255")
	}
	if v6 {
		var b [16]byte
		copy(b[:], netip.MustParseAddr("2001:db8::").AsSlice())
		b[14], b[15] = byte(rnd.IntN(256)), byte(rnd.IntN(256))
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{10, 0, byte(rnd.IntN(256)), byte(rnd.IntN(256))})
}

func randOps(rnd *rand.Rand, n int) []op {
	ops := make([]op, n)
	for i := range ops {
		v6 := rnd.IntN(3) == 0
		a := randAddr(rnd, v6)
		ops[i].add = rnd.IntN(4) != 0
		if rnd.IntN(2) == 0 {
			bitsMax := 32
			if v6 {
				bitsMax = 128
			}
			l := bitsMax - rnd.IntN(12)
			if rnd.IntN(50) == 0 {
				l = rnd.IntN(bitsMax + 1)
			}
			ops[i].p = netip.PrefixFrom(a, l).Masked()
		} else {
			b := randAddr(rnd, v6)
			if b.Less(a) {
				a, b = b, a
			}
			ops[i].r = netipx.IPRangeFrom(a, b)
		}
	}
	return ops
}

func build(t testing.TB, ops []op) (Set, *netipx.IPSet) {
	var b Builder
	var nb netipx.IPSetBuilder
	for _, o := range ops {
		switch {
		case o.p.IsValid() && o.add:
			b.AddPrefix(o.p)
			nb.AddPrefix(o.p)
		case o.p.IsValid():
			b.RemovePrefix(o.p)
			nb.RemovePrefix(o.p)
		case o.add:
			b.AddRange(o.r)
			nb.AddRange(o.r)
		default:
			b.RemoveRange(o.r)
			nb.RemoveRange(o.r)
		}
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := nb.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	return s, ns
}

// check compares s with the netipx oracle on every observable.
func check(t *testing.T, what string, s Set, o *netipx.IPSet) {
	t.Helper()
	if got, want := s.Ranges(), o.Ranges(); !slices.Equal(got, want) {
		t.Fatalf("%s: ranges\n got %v\nwant %v", what, got, want)
	}
	got, want := s.Prefixes(), o.Prefixes()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: prefixes\n got %v\nwant %v", what, got, want)
	}
	if s.NumPrefixes() != len(want) || s.NumRanges() != len(o.Ranges()) {
		t.Fatalf("%s: counts %d/%d, want %d/%d", what, s.NumPrefixes(), s.NumRanges(), len(want), len(o.Ranges()))
	}
	if !s.Equal(FromIPSet(o)) {
		t.Fatalf("%s: FromIPSet differs", what)
	}
	if !slices.Equal(s.IPSet().Ranges(), o.Ranges()) {
		t.Fatalf("%s: IPSet() differs", what)
	}
	var it []netip.Prefix
	for p := range s.AllPrefixes() {
		it = append(it, p)
	}
	if !slices.Equal(it, want) {
		t.Fatalf("%s: AllPrefixes differs", what)
	}
}

func TestSetAgainstNetipx(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		ops1 := randOps(rnd, 1+rnd.IntN(40))
		ops2 := randOps(rnd, 1+rnd.IntN(40))
		s1, o1 := build(t, ops1)
		s2, o2 := build(t, ops2)
		check(t, "build", s1, o1)

		var nb netipx.IPSetBuilder
		nb.AddSet(o1)
		nb.AddSet(o2)
		ou, _ := nb.IPSet()
		check(t, "union", s1.Union(s2), ou)

		nb = netipx.IPSetBuilder{}
		nb.AddSet(o1)
		nb.Intersect(o2)
		oi, _ := nb.IPSet()
		check(t, "intersect", s1.Intersect(s2), oi)

		nb = netipx.IPSetBuilder{}
		nb.AddSet(o1)
		nb.RemoveSet(o2)
		od, _ := nb.IPSet()
		check(t, "difference", s1.Difference(s2), od)

		nb = netipx.IPSetBuilder{}
		nb.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
		nb.AddPrefix(netip.MustParsePrefix("::/0"))
		nb.RemoveSet(o1)
		oc, _ := nb.IPSet()
		check(t, "complement", s1.Complement(), oc)
		if !s1.Complement().Complement().Equal(s1) {
			t.Fatal("complement is not an involution")
		}
		if s1.Equal(s2) != slices.Equal(o1.Ranges(), o2.Ranges()) {
			t.Fatal("Equal disagrees")
		}
		for range 20 {
			a := randAddr(rnd, rnd.IntN(2) == 0)
			if s1.Contains(a) != o1.Contains(a) {
				t.Fatalf("iteration %d: Contains(%v) = %v, want %v; set %v", i, a, s1.Contains(a), o1.Contains(a), s1)
			}
		}
		if s1.NumAddrs4()+s1.NumAddrs6().Uint64() == 0 != s1.IsEmpty() {
			t.Fatal("IsEmpty disagrees with NumAddrs")
		}
	}
}

func TestPrefixesMinimal(t *testing.T) {
	// Minimality of a CIDR list: no two prefixes overlap and no two are
	// siblings that would merge into their parent. Together with exact
	// coverage (checked against netipx above) that makes the list minimal.
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		s, _ := build(t, randOps(rnd, 60))
		ps := s.Prefixes()
		seen := map[netip.Prefix]bool{}
		for _, p := range ps {
			seen[p] = true
		}
		for i, p := range ps {
			if i > 0 && ps[i-1].Overlaps(p) {
				t.Fatalf("%v overlaps %v", ps[i-1], p)
			}
			if p.Bits() == 0 {
				continue
			}
			parent, _ := p.Addr().Prefix(p.Bits() - 1)
			sib := siblingOf(p, parent)
			if seen[sib] {
				t.Fatalf("%v and %v should merge into %v", p, sib, parent)
			}
		}
	}
}

func siblingOf(p, parent netip.Prefix) netip.Prefix {
	lo := parent.Addr()
	if p.Addr() == lo {
		r := netipx.RangeOfPrefix(p)
		return netip.PrefixFrom(r.To().Next(), p.Bits())
	}
	return netip.PrefixFrom(lo, p.Bits())
}

func TestMapped(t *testing.T) {
	var b Builder
	b.AddPrefix(netip.MustParsePrefix("::ffff:10.0.0.0/104"))
	b.Add(netip.MustParseAddr("::ffff:192.0.2.1"))
	b.AddRange(netipx.IPRangeFrom(netip.MustParseAddr("::fffe:ffff:ffff"), netip.MustParseAddr("::ffff:0.0.0.1")))
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	want := "{10.0.0.0/8, 192.0.2.1, ::fffe:ffff:ffff-::ffff:0.0.0.1}"
	if s.String() != want {
		t.Fatalf("got %v, want %v", s, want)
	}
	for _, a := range []string{"10.1.2.3", "::ffff:10.1.2.3", "192.0.2.1", "::ffff:192.0.2.1"} {
		if !s.Contains(netip.MustParseAddr(a)) {
			t.Errorf("Contains(%s) = false", a)
		}
	}
	var b2 Builder
	b2.AddPrefix(netip.MustParsePrefix("::/0"))
	s2, _ := b2.Set()
	if s2.Contains(netip.MustParseAddr("::ffff:10.0.0.1")) || s2.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("::/0 must not match IPv4 addresses")
	}
}

func TestBuilderErrors(t *testing.T) {
	var b Builder
	b.AddPrefix(netip.Prefix{})
	b.AddRange(netipx.IPRangeFrom(netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")))
	b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24"))
	s, err := b.Set()
	if err == nil {
		t.Fatal("want errors for invalid input")
	}
	if s.String() != "{192.0.2.0/24}" {
		t.Fatalf("valid input lost: %v", s)
	}
}

func TestZeroValues(t *testing.T) {
	var s Set
	var b Builder
	got, err := b.Set()
	if err != nil || !got.Equal(s) || !s.IsEmpty() || s.NumPrefixes() != 0 || len(s.Prefixes()) != 0 {
		t.Fatal("zero values are not empty sets")
	}
	if s.Contains(netip.MustParseAddr("1.2.3.4")) || s.Contains(netip.Addr{}) {
		t.Fatal("empty set contains something")
	}
	if c := s.Complement(); c.NumPrefixes() != 2 || c.NumAddrs4() != 1<<32 {
		t.Fatalf("complement of empty: %v", c)
	}
}

func TestLargeRadix(t *testing.T) {
	// Enough ranges to take the radix sort path, shuffled, against netipx.
	rnd := rand.New(rand.NewPCG(5, 6))
	var b Builder
	var nb netipx.IPSetBuilder
	for range 20000 {
		a := netip.AddrFrom4([4]byte{byte(rnd.IntN(256)), byte(rnd.IntN(256)), byte(rnd.IntN(256)), 0})
		p := netip.PrefixFrom(a, 20+rnd.IntN(13)).Masked()
		b.AddPrefix(p)
		nb.AddPrefix(p)
	}
	s, _ := b.Set()
	o, _ := nb.IPSet()
	check(t, "radix", s, o)
}
