package cidr

import (
	"context"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// A universe is a small brute-forceable problem: 2^logCells aligned cells
// of 2^cellBits addresses from base, each Match, must-not or don't-care;
// every address outside the universe is must-not. An optimal list never
// splits a cell (a block of one class is taken whole or not at all), so
// enumerating every union of cells enumerates every list worth having.
type universe struct {
	base     netip.Addr
	cellBits int
	logCells int
	class    []byte // 'm', 'n' or 'd' per cell
}

func (u universe) width() int { return u.base.BitLen() }

func (u universe) cell(i int) netip.Prefix {
	a := u.base
	// base + i·2^cellBits
	b := a.As16()
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(u.cellBits))
	n := new(big.Int).SetBytes(b[:])
	n.Add(n, off)
	var out [16]byte
	n.FillBytes(out[:])
	if a.Is4() {
		return netip.PrefixFrom(netip.AddrFrom16(out).Unmap(), 32-u.cellBits)
	}
	return netip.PrefixFrom(netip.AddrFrom16(out), 128-u.cellBits)
}

func (u universe) goal(t testing.TB) Goal {
	var m, d Builder
	for i, c := range u.class {
		switch c {
		case 'm':
			m.AddPrefix(u.cell(i))
		case 'd':
			d.AddPrefix(u.cell(i))
		}
	}
	ms, err1 := m.Set()
	ds, err2 := d.Set()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return Goal{ms, ds}
}

func randUniverse(rnd *rand.Rand) universe {
	var u universe
	type shape struct {
		base           string
		cellBits, logC int
	}
	shapes := []shape{
		{"10.0.0.0", 0, 4},    // a /28 of single addresses
		{"10.0.0.0", 4, 4},    // a /24 of /28s
		{"10.1.0.0", 8, 3},    // part of a /16
		{"0.0.0.0", 28, 4},    // all of IPv4: no must-not outside
		{"2001:db8::", 0, 4},  // IPv6 single addresses
		{"2001:db8::", 80, 4}, // IPv6 /48s
		{"::", 124, 4},        // all of IPv6: counts up to 2^128
		{"8000::", 100, 3},
	}
	s := shapes[rnd.IntN(len(shapes))]
	u.base = netip.MustParseAddr(s.base)
	u.cellBits, u.logCells = s.cellBits, s.logC
	// Vary the mix so that some universes are mostly one class.
	pm, pd := rnd.IntN(10), rnd.IntN(10)
	u.class = make([]byte, 1<<s.logC)
	for i := range u.class {
		switch r := rnd.IntN(10 + pm + pd); {
		case r < 5+pm:
			u.class[i] = 'm'
		case r < 5+pm+pd:
			u.class[i] = 'd'
		default:
			u.class[i] = 'n'
		}
	}
	return u
}

// brute returns, for every union of cells (a bit mask), its minimal prefix
// count, range count and loss in cells weighted by cell size (as a count
// of addresses).
type bruteResult struct {
	minPrefixes, minRanges int        // exact lists
	bestP, bestR           []*big.Int // least loss with ≤ k prefixes / ranges
}

func (u universe) brute() bruteResult {
	nc := len(u.class)
	var res bruteResult
	res.minPrefixes, res.minRanges = 1<<30, 1<<30
	bestP := make([]int, nc+1) // least misclassified cells
	bestR := make([]int, nc+1)
	for k := range bestP {
		bestP[k], bestR[k] = 1<<30, 1<<30
	}
	var prefixes func(mask uint32, lo, n int) int
	prefixes = func(mask uint32, lo, n int) int {
		w := mask >> uint(lo) & (1<<uint(n) - 1)
		switch {
		case w == 0:
			return 0
		case w == 1<<uint(n)-1:
			return 1
		}
		return prefixes(mask, lo, n/2) + prefixes(mask, lo+n/2, n/2)
	}
	var must, mustNot uint32
	for i, c := range u.class {
		switch c {
		case 'm':
			must |= 1 << uint(i)
		case 'n':
			mustNot |= 1 << uint(i)
		}
	}
	var p8 [256]int // prefix counts of 8-cell blocks
	for w := range p8 {
		p8[w] = prefixes(uint32(w), 0, 8)
	}
	for mask := uint32(0); mask < 1<<uint(nc); mask++ {
		bad := bits.OnesCount32(must&^mask | mustNot&mask)
		var np int
		switch {
		case nc < 8:
			np = prefixes(mask, 0, nc)
		case mask == 1<<uint(nc)-1:
			np = 1
		default:
			np = p8[mask&255] + p8[mask>>8&255]
		}
		nr := bits.OnesCount32(mask &^ (mask << 1))
		if bad == 0 {
			res.minPrefixes = min(res.minPrefixes, np)
			res.minRanges = min(res.minRanges, nr)
		}
		bestP[np] = min(bestP[np], bad)
		bestR[nr] = min(bestR[nr], bad)
	}
	res.bestP = make([]*big.Int, nc+1)
	res.bestR = make([]*big.Int, nc+1)
	for k := 1; k <= nc; k++ { // "at most k"
		bestP[k] = min(bestP[k], bestP[k-1])
		bestR[k] = min(bestR[k], bestR[k-1])
	}
	for k := range bestP {
		res.bestP[k] = new(big.Int).Lsh(big.NewInt(int64(bestP[k])), uint(u.cellBits))
		res.bestR[k] = new(big.Int).Lsh(big.NewInt(int64(bestR[k])), uint(u.cellBits))
	}
	return res
}

// count classifies s cell by cell, directly against the universe: it fails
// if s splits a cell or reaches outside the universe, and returns the
// misclassified addresses.
func (u universe) count(t *testing.T, what string, s Set) *big.Int {
	t.Helper()
	var in Builder
	for i := range u.class {
		in.AddPrefix(u.cell(i))
	}
	all, _ := in.Set()
	if out := s.Difference(all); !out.IsEmpty() {
		t.Fatalf("%s: %v reaches outside the universe", what, out)
	}
	size := new(big.Int).Lsh(big.NewInt(1), uint(u.cellBits))
	loss := new(big.Int)
	for i, c := range u.class {
		p := u.cell(i)
		has := s.Contains(p.Addr())
		if s.ContainsPrefix(p) != has {
			t.Fatalf("%s: %v splits cell %v", what, s, p)
		}
		if c == 'm' && !has || c == 'n' && has {
			loss.Add(loss, size)
		}
	}
	return loss
}

func lossOf(u universe, l Loss) *big.Int {
	if u.base.Is4() {
		if l.Extra6.Sign() != 0 || l.Missed6.Sign() != 0 {
			panic("IPv6 loss in an IPv4 universe")
		}
		return new(big.Int).SetUint64(l.Total4())
	}
	if l.Total4() != 0 {
		panic("IPv4 loss in an IPv6 universe")
	}
	return l.Total6()
}

func TestMinimalAgainstBruteForce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		u := randUniverse(rnd)
		g := u.goal(t)
		want := u.brute()
		what := func(s string) string { return u.base.String() + " " + string(u.class) + ": " + s }

		p := g.MinPrefixes()
		if got := p.NumPrefixes(); got != want.minPrefixes {
			t.Fatalf("%s = %d prefixes, brute force %d (trial %d)", what("MinPrefixes"), got, want.minPrefixes, trial)
		}
		if l := u.count(t, what("MinPrefixes"), p); l.Sign() != 0 {
			t.Fatalf("%s misclassifies %v addresses", what("MinPrefixes"), l)
		}
		r := g.MinRanges()
		if got := r.NumRanges(); got != want.minRanges {
			t.Fatalf("%s = %d ranges, brute force %d", what("MinRanges"), got, want.minRanges)
		}
		if l := u.count(t, what("MinRanges"), r); l.Sign() != 0 {
			t.Fatalf("%s misclassifies %v addresses", what("MinRanges"), l)
		}
	}
}

func TestFitAgainstBruteForce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	ctx := context.Background()
	optimal, cases := 0, 0
	for range 300 {
		u := randUniverse(rnd)
		g := u.goal(t)
		want := u.brute()
		for k := 0; k <= len(u.class); k++ {
			what := u.base.String() + " " + string(u.class) + ": "

			fr, err := g.FitRanges(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			got := u.count(t, what+"FitRanges", fr.Set)
			if got.Cmp(lossOf(u, fr.Loss)) != 0 {
				t.Fatalf("%sFitRanges(%d) reports loss %v, direct count %v", what, k, lossOf(u, fr.Loss), got)
			}
			if got.Cmp(want.bestR[k]) != 0 || fr.Set.NumRanges() > k || !fr.Optimal() {
				t.Fatalf("%sFitRanges(%d) = %v: %d ranges, loss %v; brute force loss %v", what, k, fr.Set, fr.Set.NumRanges(), got, want.bestR[k])
			}

			fp, err := g.FitPrefixes(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			got = u.count(t, what+"FitPrefixes", fp.Set)
			if got.Cmp(lossOf(u, fp.Loss)) != 0 {
				t.Fatalf("%sFitPrefixes(%d) reports loss %v, direct count %v", what, k, lossOf(u, fp.Loss), got)
			}
			if n := fp.Set.NumPrefixes(); n > k || n != fp.Entries4+fp.Entries6 {
				t.Fatalf("%sFitPrefixes(%d) = %v: %d prefixes, reported %d+%d", what, k, fp.Set, n, fp.Entries4, fp.Entries6)
			}
			bound := new(big.Int).SetUint64(fp.Bound4)
			if u.base.Is6() {
				bound = fp.Bound6
			}
			if bound.Cmp(want.bestP[k]) > 0 {
				t.Fatalf("%sFitPrefixes(%d): bound %v above the optimum %v", what, k, bound, want.bestP[k])
			}
			if fp.Optimal() && got.Cmp(want.bestP[k]) != 0 {
				t.Fatalf("%sFitPrefixes(%d) claims optimal at %v, brute force %v", what, k, got, want.bestP[k])
			}
			cases++
			if got.Cmp(want.bestP[k]) == 0 {
				optimal++
			}
		}
	}
	t.Logf("FitPrefixes optimal in %d of %d cases", optimal, cases)
}
