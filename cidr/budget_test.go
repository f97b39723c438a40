package cidr

import (
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// randGoal returns a goal of many random ranges in a few places of both
// families, large enough for the trie search to take many rounds.
func randGoal(t *testing.T, rnd *rand.Rand, n int) Goal {
	var m, d Builder
	for range n {
		for _, v6 := range []bool{false, true} {
			a := randAddr(rnd, v6)
			l := 32 - rnd.IntN(9)
			if v6 {
				l = 128 - rnd.IntN(9)
			}
			p := netip.PrefixFrom(a, l).Masked()
			switch rnd.IntN(3) {
			case 0:
				d.AddPrefix(p)
			default:
				m.AddPrefix(p)
			}
		}
	}
	ms, err1 := m.Set()
	ds, err2 := d.Set()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return Goal{ms, ds}
}

// TestFitProperties checks, on problems too big for brute force, what must
// hold at every budget: the exact covers are exact on cared-for addresses
// and no longer than the exact lists, fits keep to the budget, report the
// loss recounted here address range by address range, and bound it from
// below; ranges never lose to prefixes.
func TestFitProperties(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	ctx := context.Background()
	for range 40 {
		g := randGoal(t, rnd, 50+rnd.IntN(400))
		mustNot := g.Match.Union(g.DontCare).Complement()
		mp, mr := g.MinPrefixes(), g.MinRanges()
		for _, s := range []Set{mp, mr} {
			if !g.Match.Difference(s).IsEmpty() || !s.Intersect(mustNot).IsEmpty() {
				t.Fatalf("exact cover %v misclassifies", s)
			}
		}
		if mp.IPv4().NumPrefixes() > g.Match.IPv4().NumPrefixes() || mr.NumRanges() > g.Match.NumRanges() {
			t.Fatalf("don't-care covers longer than exact lists")
		}
		exact4, exact6 := mp.IPv4().NumPrefixes(), mp.IPv6().NumPrefixes()
		for _, max := range []int{0, 1, 2, 5, 20, 100, exact4 - 1, exact6 - 1, exact4, 1 << 20} {
			if max < 0 {
				continue
			}
			fp, err := g.FitPrefixes(ctx, max)
			if err != nil {
				t.Fatal(err)
			}
			fr, err := g.FitRanges(ctx, max)
			if err != nil {
				t.Fatal(err)
			}
			if fp.Entries4 > max || fp.Entries6 > max || fr.Entries4 > max || fr.Entries6 > max {
				t.Fatalf("budget %d: entries %d/%d prefixes, %d/%d ranges", max, fp.Entries4, fp.Entries6, fr.Entries4, fr.Entries6)
			}
			for _, f := range []Fit{fp, fr} {
				e4, m4, e6, m6 := sweepLoss(g, f.Set)
				if e4 != f.Loss.Extra4 || m4 != f.Loss.Missed4 || e6.Cmp(f.Loss.Extra6) != 0 || m6.Cmp(f.Loss.Missed6) != 0 {
					t.Fatalf("budget %d: reported loss %+v, swept %d %d %v %v", max, f.Loss, e4, m4, e6, m6)
				}
				if f.Bound4 > f.Loss.Total4() || f.Bound6.Cmp(f.Loss.Total6()) > 0 {
					t.Fatalf("budget %d: bound %d/%v above loss %d/%v", max, f.Bound4, f.Bound6, f.Loss.Total4(), f.Loss.Total6())
				}
			}
			// Every prefix list is a range list no longer, and ranges are
			// optimal.
			if fr.Loss.Total4() > fp.Bound4 && fr.Loss.Total4() > fp.Loss.Total4() {
				t.Fatalf("budget %d: ranges lose %d, prefixes %d", max, fr.Loss.Total4(), fp.Loss.Total4())
			}
			if max >= exact4 && fp.Loss.Total4() != 0 || max >= exact6 && fp.Loss.Total6().Sign() != 0 {
				t.Fatalf("budget %d ≥ exact %d/%d but loss %+v", max, exact4, exact6, fp.Loss)
			}
		}
	}
}

// sweepLoss counts misclassified addresses by walking the boundaries of
// match, don't-care and s together, without the set algebra.
func sweepLoss(g Goal, s Set) (extra4, missed4 uint64, extra6, missed6 *big.Int) {
	cut := func(b []a6, rs []r6) []a6 {
		for _, r := range rs {
			b = append(b, r.lo, r.hi.succ())
		}
		return b
	}
	in := func(rs []r6, x a6) bool {
		for _, r := range rs {
			if !x.less(r.lo) && !r.hi.less(x) {
				return true
			}
		}
		return false
	}
	count := func(width int, m, d, out []r6) (*big.Int, *big.Int) {
		points := cut(cut(cut([]a6{{}}, m), d), out)
		// Sort, and treat a wrapped 2^width as the end.
		sortA6(points)
		extra, missed := new(big.Int), new(big.Int)
		end := new(big.Int).Lsh(big.NewInt(1), uint(width))
		for i, p := range points {
			if i > 0 && p == points[i-1] {
				continue
			}
			if width == 32 && p.lo > 0xffffffff {
				continue
			}
			next := end
			for _, q := range points[i+1:] {
				if p.less(q) && (width == 128 || q.lo <= 0xffffffff) {
					next = q.big()
					break
				}
			}
			n := new(big.Int).Sub(next, p.big())
			if n.Sign() <= 0 {
				continue
			}
			im, id, io := in(m, p), in(d, p), in(out, p)
			switch {
			case im && !io:
				missed.Add(missed, n)
			case !im && !id && io:
				extra.Add(extra, n)
			}
		}
		return extra, missed
	}
	e4, m4 := count(32, widen4(g.Match.v4), widen4(g.DontCare.v4), widen4(s.v4))
	extra6, missed6 = count(128, g.Match.v6, g.DontCare.v6, s.v6)
	return e4.Uint64(), m4.Uint64(), extra6, missed6
}

func sortA6(xs []a6) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j].less(xs[j-1]); j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

func TestFitErrors(t *testing.T) {
	g := Goal{Match: mustSet(t, "10.0.0.0/24", "10.0.2.0/24"), DontCare: mustSet(t, "10.0.1.0/25")}
	if _, err := g.FitPrefixes(context.Background(), -1); !errors.Is(err, ErrBudget) {
		t.Errorf("FitPrefixes(-1): %v, want ErrBudget", err)
	}
	if _, err := g.FitRanges(context.Background(), -1); !errors.Is(err, ErrBudget) {
		t.Errorf("FitRanges(-1): %v, want ErrBudget", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.FitPrefixes(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("FitPrefixes on a cancelled context: %v", err)
	}
}

func mustSet(t *testing.T, ps ...string) Set {
	var b Builder
	for _, p := range ps {
		b.AddPrefix(netip.MustParsePrefix(p))
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGoalEdges(t *testing.T) {
	all := mustSet(t, "0.0.0.0/0", "::/0")
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		g          Goal
		max        int
		want       Set
		loss4      uint64
		loss6, bnd string
	}{
		{"empty", Goal{}, 10, Set{}, 0, "0", "0"},
		{"everything", Goal{Match: all}, 1, all, 0, "0", "0"},
		{"everything, no budget", Goal{Match: all}, 0, Set{}, 1 << 32, "340282366920938463463374607431768211456", "340282366920938463463374607431768211455"},
		{"all don't-care", Goal{Match: mustSet(t, "10.0.0.1/32"), DontCare: all}, 1, mustSet(t, "0.0.0.0/0"), 0, "0", "0"},
		{"match wins over don't-care", Goal{Match: mustSet(t, "10.0.0.0/8"), DontCare: mustSet(t, "10.0.0.0/7")}, 5, mustSet(t, "10.0.0.0/7"), 0, "0", "0"},
	} {
		f, err := tc.g.FitPrefixes(ctx, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Set.Equal(tc.want) || f.Loss.Total4() != tc.loss4 || f.Loss.Total6().String() != tc.loss6 {
			t.Errorf("%s: got %v loss %d %v, want %v %d %s", tc.name, f.Set, f.Loss.Total4(), f.Loss.Total6(), tc.want, tc.loss4, tc.loss6)
		}
		if f.Bound6.String() != tc.bnd {
			t.Errorf("%s: IPv6 bound %v, want %s", tc.name, f.Bound6, tc.bnd)
		}
		if tc.max > 0 && !tc.g.MinPrefixes().Equal(tc.want) {
			t.Errorf("%s: MinPrefixes %v, want %v", tc.name, tc.g.MinPrefixes(), tc.want)
		}
	}
}

func TestInverse(t *testing.T) {
	g := Goal{Match: mustSet(t, "10.0.0.0/8", "2001:db8::/32"), DontCare: mustSet(t, "11.0.0.0/8", "10.1.0.0/16")}
	inv := g.Inverse()
	if !inv.Inverse().Match.Equal(g.Match) {
		t.Errorf("inverse of inverse matches %v", inv.Inverse().Match)
	}
	if !inv.MustNot().Equal(g.Match) {
		t.Errorf("inverse must not match %v, want %v", inv.MustNot(), g.Match)
	}
	// "not in X" and "in Y" agree on every cared-for address.
	x, y := g.MinPrefixes(), inv.MinPrefixes()
	cared := g.Match.Union(g.MustNot())
	if !x.Complement().Intersect(cared).Equal(y.Intersect(cared)) {
		t.Errorf("not-in %v and in %v disagree", x, y)
	}
}

func TestSpecialPurpose(t *testing.T) {
	s := SpecialPurpose()
	for _, a := range []string{"10.1.2.3", "192.168.1.1", "127.0.0.1", "240.0.0.1", "255.255.255.255", "fe80::1", "2001:db8::1", "fd00::1", "::1", "2002::1"} {
		if !s.Contains(netip.MustParseAddr(a)) {
			t.Errorf("%s not special-purpose", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "2a00:1450::1", "2600::1", "::ffff:8.8.8.8"} {
		if s.Contains(netip.MustParseAddr(a)) {
			t.Errorf("%s special-purpose", a)
		}
	}
	if n := s.IPv4().NumAddrs4(); n > 600_000_000 {
		t.Errorf("%d special-purpose IPv4 addresses: the mapped block leaked in", n)
	}
}
