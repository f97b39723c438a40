package benchmarks

import (
	"context"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// Aggregation with don't-care space and an entry budget, on input A (six
// countries, IPv4) and C (its IPv6 counterpart). The don't-care space is
// what the database gives no country plus the IANA special-purpose blocks.

var (
	goalOnce sync.Once
	goal4    cidr.Goal
	goal6    cidr.Goal
)

func setOf(ps []netip.Prefix) cidr.Set {
	var b cidr.Builder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	s, _ := b.Set()
	return s
}

// goals returns the IPv4 and IPv6 goals of the seed policy.
func goals(tb testing.TB) (cidr.Goal, cidr.Goal) {
	nets := dataset.Networks(tb)
	goalOnce.Do(func() {
		var known []netip.Prefix
		for _, n := range nets {
			if n.Country != "" {
				known = append(known, n.Prefix)
			}
		}
		dc := setOf(known).Complement().Union(cidr.SpecialPurpose())
		six := setOf(append(dataset.Select(nets, 4, dataset.Six...), dataset.Select(nets, 6, dataset.Six...)...))
		goal4 = cidr.Goal{Match: six.IPv4(), DontCare: dc.IPv4()}
		goal6 = cidr.Goal{Match: six.IPv6(), DontCare: dc.IPv6()}
	})
	return goal4, goal6
}

var budgets = []int{50000, 20000, 5000}

// TestOptimalReport prints the numbers of benchmarks/README.md and checks
// them against a direct count.
func TestOptimalReport(t *testing.T) {
	g4, g6 := goals(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		g    cidr.Goal
	}{{"A (IPv4)", g4}, {"C (IPv6)", g6}} {
		g := c.g
		cared := g.MustNot().Union(g.Match)
		var caredN *big.Int
		if c.name[0] == 'A' {
			caredN = new(big.Int).SetUint64(cared.IPv4().NumAddrs4())
		} else {
			caredN = cared.IPv6().NumAddrs6()
		}
		t.Logf("%s: cared-for addresses %v", c.name, caredN)
		t.Logf("%s: exact %d prefixes, %d ranges", c.name, g.Match.NumPrefixes(), g.Match.NumRanges())
		start := time.Now()
		mp := g.MinPrefixes()
		t.Logf("%s: don't-care-aware %d prefixes (%v)", c.name, mp.NumPrefixes(), time.Since(start))
		start = time.Now()
		mr := g.MinRanges()
		t.Logf("%s: don't-care-aware %d ranges (%v)", c.name, mr.NumRanges(), time.Since(start))
		inv := g.Inverse()
		t.Logf("%s: inverse: %d prefixes, %d ranges", c.name, inv.MinPrefixes().NumPrefixes(), inv.MinRanges().NumRanges())
		for _, k := range budgets {
			start = time.Now()
			fp, err := g.FitPrefixes(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			dp := time.Since(start)
			start = time.Now()
			fr, err := g.FitRanges(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			dr := time.Since(start)
			t.Logf("%s @%d: prefixes %s (%v); ranges %s (%v)", c.name, k, fitString(fp, caredN), dp, fitString(fr, caredN), dr)
			checkLoss(t, g, fp)
			checkLoss(t, g, fr)
		}
		checkLoss(t, g, cidr.Fit{Set: mp, Loss: g.Loss(mp)})
		checkLoss(t, g, cidr.Fit{Set: mr, Loss: g.Loss(mr)})
		if mp.NumPrefixes() > g.Match.NumPrefixes() || mr.NumRanges() > g.Match.NumRanges() {
			t.Errorf("%s: don't-care-aware lists longer than the exact ones", c.name)
		}
		if l := g.Loss(mp); l.Total4() != 0 || l.Total6().Sign() != 0 {
			t.Errorf("%s: MinPrefixes misclassifies", c.name)
		}

		// The least budget under 0.1% of the cared-for addresses.
		limit := new(big.Int).Div(caredN, big.NewInt(1000))
		for _, kind := range []string{"prefixes", "ranges"} {
			fit := g.FitPrefixes
			if kind == "ranges" {
				fit = g.FitRanges
			}
			lo, hi := 0, 200000 // loss(lo) ≥ limit > loss(hi)
			for hi-lo > 1 {
				mid := (lo + hi) / 2
				f, err := fit(ctx, mid)
				if err != nil {
					t.Fatal(err)
				}
				if lossTotal(f).Cmp(limit) < 0 {
					hi = mid
				} else {
					lo = mid
				}
			}
			t.Logf("%s: fewest %s misclassifying < 0.1%% of cared-for addresses (%v): %d", c.name, kind, limit, hi)
		}
		// Below this many prefixes the bound proves 0.1% out of reach.
		lo, hi := 0, 200000 // bound(lo) ≥ limit > bound(hi)
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			f, err := g.FitPrefixes(ctx, mid)
			if err != nil {
				t.Fatal(err)
			}
			b := new(big.Int).Add(new(big.Int).SetUint64(f.Bound4), f.Bound6)
			if b.Cmp(limit) < 0 {
				hi = mid
			} else {
				lo = mid
			}
		}
		t.Logf("%s: no list of %d prefixes or fewer misclassifies < 0.1%% (bound)", c.name, lo)
	}
}

func lossTotal(f cidr.Fit) *big.Int {
	return new(big.Int).Add(new(big.Int).SetUint64(f.Loss.Total4()), f.Loss.Total6())
}

// checkLoss recounts a fit's misclassified addresses with netipx, an
// independent implementation of the set algebra.
func checkLoss(t *testing.T, g cidr.Goal, f cidr.Fit) {
	t.Helper()
	count := func(s *netipx.IPSet) *big.Int {
		n := new(big.Int)
		for _, r := range s.Ranges() {
			lo := new(big.Int).SetBytes(r.From().AsSlice())
			hi := new(big.Int).SetBytes(r.To().AsSlice())
			n.Add(n, hi.Sub(hi, lo).Add(hi, big.NewInt(1)))
		}
		return n
	}
	out, m, dc := f.Set.IPSet(), g.Match.IPSet(), g.DontCare.IPSet()
	var b netipx.IPSetBuilder
	b.AddSet(out)
	b.RemoveSet(m)
	b.RemoveSet(dc)
	extra, _ := b.IPSet()
	b = netipx.IPSetBuilder{}
	b.AddSet(m)
	b.RemoveSet(out)
	missed, _ := b.IPSet()
	wantExtra := new(big.Int).Add(new(big.Int).SetUint64(f.Loss.Extra4), f.Loss.Extra6)
	wantMissed := new(big.Int).Add(new(big.Int).SetUint64(f.Loss.Missed4), f.Loss.Missed6)
	if got := count(extra); got.Cmp(wantExtra) != 0 {
		t.Errorf("extra: reported %v, netipx counts %v", wantExtra, got)
	}
	if got := count(missed); got.Cmp(wantMissed) != 0 {
		t.Errorf("missed: reported %v, netipx counts %v", wantMissed, got)
	}
}

func fitString(f cidr.Fit, cared *big.Int) string {
	l := f.Loss
	if f.Entries6 == 0 {
		tot := l.Total4()
		return fmt.Sprintf("%d entries, extra %d missed %d = %d (%.4f%%), bound %d", f.Entries4, l.Extra4, l.Missed4, tot,
			100*float64(tot)/float64(cared.Uint64()), f.Bound4)
	}
	tot := l.Total6()
	r, _ := new(big.Float).Quo(new(big.Float).SetInt(tot), new(big.Float).SetInt(cared)).Float64()
	return fmt.Sprintf("%d entries, extra %v missed %v = %v (%.4f%%), bound %v", f.Entries6, l.Extra6, l.Missed6, tot, 100*r, f.Bound6)
}

// BenchmarkOptimal times each way of writing the seed policy's list and
// reports its entries and misclassified addresses (metrics "entries" and
// "wrong-addrs"; the exact and don't-care-aware lists misclassify none).
func BenchmarkOptimal(b *testing.B) {
	g4, g6 := goals(b)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		g    cidr.Goal
	}{{"A", g4}, {"C", g6}} {
		g := c.g
		report := func(b *testing.B, entries int, f *cidr.Fit) {
			b.ReportMetric(float64(entries), "entries")
			if f != nil {
				w, _ := new(big.Float).SetInt(lossTotal(*f)).Float64()
				b.ReportMetric(w, "wrong-addrs")
			}
		}
		b.Run(c.name+"/exact-prefixes", func(b *testing.B) {
			var n int
			for b.Loop() {
				n = len(g.Match.Prefixes())
			}
			report(b, n, nil)
		})
		b.Run(c.name+"/exact-ranges", func(b *testing.B) {
			var n int
			for b.Loop() {
				n = len(g.Match.Ranges())
			}
			report(b, n, nil)
		})
		b.Run(c.name+"/dontcare-prefixes", func(b *testing.B) {
			var n int
			for b.Loop() {
				n = len(g.MinPrefixes().Prefixes())
			}
			report(b, n, nil)
		})
		b.Run(c.name+"/dontcare-ranges", func(b *testing.B) {
			var n int
			for b.Loop() {
				n = len(g.MinRanges().Ranges())
			}
			report(b, n, nil)
		})
		for _, k := range budgets {
			for _, kind := range []string{"prefixes", "ranges"} {
				fit := g.FitPrefixes
				if kind == "ranges" {
					fit = g.FitRanges
				}
				b.Run(fmt.Sprintf("%s/fit-%s-%d", c.name, kind, k), func(b *testing.B) {
					var f cidr.Fit
					for b.Loop() {
						var err error
						if f, err = fit(ctx, k); err != nil {
							b.Fatal(err)
						}
					}
					report(b, f.Entries4+f.Entries6, &f)
				})
			}
		}
	}
}
