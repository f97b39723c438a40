package cidr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
)

// A Fit is a set chosen to fit an entry budget, and what it costs.
type Fit struct {
	// Set holds the addresses matched. Its [Set.Prefixes] (after
	// [Goal.FitPrefixes]) or [Set.Ranges] (after [Goal.FitRanges]) is the
	// list, at most the budget's entries per family.
	Set Set

	// Entries4 and Entries6 are the list's entries per family.
	Entries4, Entries6 int

	// Loss counts the cared-for addresses Set misclassifies, directly
	// against the goal.
	Loss Loss

	// Bound4 and Bound6 are lower bounds on the misclassified addresses of
	// every list of the same kind within the budget: a family's fit is
	// optimal when its loss equals its bound, and otherwise at most
	// loss − bound addresses from optimal. Bound6 is never nil.
	Bound4 uint64
	Bound6 *big.Int
}

// Optimal reports whether both families' fits are proven optimal.
func (f Fit) Optimal() bool {
	return f.Loss.Total4() == f.Bound4 && f.Loss.Total6().Cmp(f.Bound6) == 0
}

// ErrBudget is returned for a negative budget.
var ErrBudget = errors.New("cidr: negative entry budget")

// FitPrefixes returns the prefix list of at most max entries per family
// (RouterOS and nftables keep IPv4 and IPv6 lists apart) that misclassifies
// the fewest cared-for addresses of g, every address counting one and
// don't-care addresses zero. With max at least the length of
// [Goal.MinPrefixes] the result is that exact list.
//
// The result is optimal for its own length and the returned bound is
// proven; when the budget falls between two lengths at which the trade-off
// bends, the loss may exceed the bound by at most λ·(max − entries), λ being
// the marginal cost of an entry there (see budget.go). Fit.Optimal says
// whether the optimum was proven.
//
// The work is a few dozen linear passes over the blocks of the binary trie
// that hold both Match and must-not addresses; ctx is checked between
// passes.
func (g Goal) FitPrefixes(ctx context.Context, max int) (Fit, error) {
	if max < 0 {
		return Fit{}, ErrBudget
	}
	var f Fit
	v4, b4, err := fitPrefixes(ctx, g.part4(), max)
	if err != nil {
		return Fit{}, fmt.Errorf("cidr: fitting IPv4 prefixes: %w", err)
	}
	v6, b6, err := fitPrefixes(ctx, g.part6(), max)
	if err != nil {
		return Fit{}, fmt.Errorf("cidr: fitting IPv6 prefixes: %w", err)
	}
	f.Set = Set{v4: narrow4(v4), v6: v6}
	f.Entries4 = f.Set.IPv4().NumPrefixes()
	f.Entries6 = f.Set.IPv6().NumPrefixes()
	f.Loss = g.Loss(f.Set)
	f.Bound4 = b4.lo
	f.Bound6 = b6.big()
	return f, nil
}

// Budgeted prefixes: a Lagrangian relaxation over the trie.
//
// Let f(k) be the least loss of a list of ≤ k prefixes. f is not convex in
// general (the trie's take-the-block choices are all-or-nothing), so the
// exact trade-off needs a min-plus convolution per block, far too costly at
// 10^5 entries. Instead, for a price λ = a/b per entry, each block takes the
// cheapest of
//
//	nothing:  b·m           (its Match addresses are missed)
//	whole:    b·n + a       (its must-not addresses are matched)
//	split:    g(lower) + g(upper)
//
// where m and n count the block's Match and must-not addresses. Blocks
// without must-not addresses are leaves choosing nothing or whole; blocks
// without Match addresses choose nothing. One pass in post-order gives G(λ)
// = min over lists of b·loss + a·entries, with the least and greatest entry
// count among the minimizers. Any minimizer with e entries is optimal among
// lists of ≤ e entries (a better one would have a smaller b·loss + a·entry),
// and for every λ, ⌈(G(λ) − a·max)/b⌉ bounds the loss of every list of ≤ max
// entries from below.
//
// The search walks the lower convex hull of f (Eisner–Severance): from the
// points (0, |Match|) and (exact entries, 0), it prices an entry at the
// slope between the two points that straddle max, and either finds a new
// hull point between them, which replaces one, or learns that the two are
// neighbours on the hull. Then λ is the hull's slope at max and the
// minimizers at λ are rebuilt aiming at max entries: each tie between
// options is broken top-down toward the largest entry count not above what
// is left of the budget. Ties are common (losses are multiples of block
// sizes), so this often reaches max exactly, which proves optimality; when
// it cannot, the loss is within λ·(max − entries) of the bound.

// trie is the part of the binary trie the budgeted search needs: the
// blocks holding both Match and must-not addresses, in post-order (children
// before parents, the root last).
type trie struct {
	nodes []tnode
	leafM []a6 // Match counts of leaves that hold Match but no must-not
}

// tnode is an inner block. A child reference c is an inner node if c ≥ 0,
// a leaf without Match addresses if c == noMatch, and otherwise the leaf
// whose Match count is leafM[-c-2].
type tnode struct {
	m, n a6
	l, r int32
}

const noMatch = -1

func (p *part) trie() *trie {
	t := &trie{}
	var walk func(lo a6, plen, i, j int) int32
	walk = func(lo a6, plen, i, j int) int32 {
		host := p.width - plen
		hi := lo.or(lowMask6(host))
		m, d := p.counts(lo, hi, i, j)
		if m.isZero() {
			return noMatch
		}
		n := hi.sub(lo).sub(m).sub(d).succ()
		if n.isZero() {
			t.leafM = append(t.leafM, m)
			return int32(-len(t.leafM) - 1)
		}
		mid := lo.or(bit6(host - 1))
		li, lj, ri, rj := p.split(mid, i, j)
		l := walk(lo, plen+1, li, lj)
		r := walk(mid, plen+1, ri, rj)
		t.nodes = append(t.nodes, tnode{m, n, l, r})
		return int32(len(t.nodes) - 1)
	}
	walk(a6{}, 0, 0, len(p.segs))
	return t
}

// dp holds one pass's results per inner node: the least priced cost and
// the range of entry counts among its minimizers.
type dp struct {
	a    a6     // price numerator: λ = a/b
	b    uint64 // price denominator
	g    []u192
	emin []int32
	emax []int32
}

// option folds one option (cost c, entries lo..hi) into a running minimum.
func option(g u192, lo, hi int32, c u192, clo, chi int32) (u192, int32, int32) {
	switch {
	case c.less(g):
		return c, clo, chi
	case g.less(c):
		return g, lo, hi
	}
	return g, min(lo, clo), max(hi, chi)
}

func (t *trie) child(d *dp, c int32) (u192, int32, int32) {
	switch {
	case c >= 0:
		return d.g[c], d.emin[c], d.emax[c]
	case c == noMatch:
		return u192{}, 0, 0
	}
	// A leaf: nothing (miss its Match addresses) or take it whole.
	return option(mul(t.leafM[-c-2], d.b), 0, 0, wide(d.a), 1, 1)
}

func (t *trie) pass(d *dp) {
	if len(d.g) != len(t.nodes) {
		d.g = make([]u192, len(t.nodes))
		d.emin = make([]int32, len(t.nodes))
		d.emax = make([]int32, len(t.nodes))
	}
	aw := wide(d.a)
	for i := range t.nodes {
		nd := &t.nodes[i]
		gl, l0, l1 := t.child(d, nd.l)
		gr, r0, r1 := t.child(d, nd.r)
		g, e0, e1 := gl.add(gr), l0+r0, l1+r1
		g, e0, e1 = option(g, e0, e1, mul(nd.m, d.b), 0, 0)
		g, e0, e1 = option(g, e0, e1, mul(nd.n, d.b).add(aw), 1, 1)
		d.g[i], d.emin[i], d.emax[i] = g, e0, e1
	}
}

// root returns the pass's result for the whole family.
func (t *trie) root(d *dp) (u192, int32, int32) {
	return t.child(d, int32(len(t.nodes)-1))
}

// build rebuilds a minimizer of pass d with as many entries as possible up
// to target (at least the root's emin), appending its blocks to out.
func (t *trie) build(d *dp, width int, target int32, out []r6) ([]r6, int32) {
	var used int32
	var walk func(c int32, lo a6, plen int, t0 int32) int32
	walk = func(c int32, lo a6, plen int, tgt int32) int32 {
		hi := lo.or(lowMask6(width - plen))
		if c == noMatch {
			return 0
		}
		if c < 0 {
			w := mul(t.leafM[-c-2], d.b)
			aw := wide(d.a)
			if aw.less(w) || (aw == w && tgt >= 1) {
				out = appendMerge(out, r6{lo, hi})
				return 1
			}
			return 0
		}
		nd := &t.nodes[c]
		best := d.g[c]
		gl, l0, l1 := t.child(d, nd.l)
		gr, r0, r1 := t.child(d, nd.r)
		// Pick, among the options achieving best, the one reaching the most
		// entries without passing tgt.
		type opt struct {
			kind   int // 0 nothing, 1 whole, 2 split
			lo, hi int32
		}
		cands := [3]opt{{0, 0, 0}, {1, 1, 1}, {2, l0 + r0, l1 + r1}}
		costs := [3]u192{mul(nd.m, d.b), mul(nd.n, d.b).add(wide(d.a)), gl.add(gr)}
		pick, reach := -1, int32(-1)
		for k, o := range cands {
			if costs[k] != best || o.lo > tgt {
				continue
			}
			if r := min(o.hi, tgt); r > reach {
				pick, reach = k, r
			}
		}
		switch pick {
		case 1:
			out = appendMerge(out, r6{lo, hi})
			return 1
		case 2:
			mid := lo.or(bit6(width - plen - 1))
			tl := min(l1, tgt-r0)
			ul := walk(nd.l, lo, plen+1, tl)
			return ul + walk(nd.r, mid, plen+1, tgt-ul)
		}
		return 0
	}
	used = walk(int32(len(t.nodes)-1), a6{}, 0, target)
	return out, used
}

// maxRounds caps the hull walk; each round is one linear pass. The walk
// takes far fewer on real data, and stopping early only weakens the bound.
const maxRounds = 200

// fitPrefixes returns the chosen ranges and a lower bound on the loss of
// any list of ≤ max prefixes.
func fitPrefixes(ctx context.Context, p *part, max int) ([]r6, a6, error) {
	if out, ok := p.trivial(); ok {
		if len(out) == 0 || max >= 1 {
			return out, a6{}, nil
		}
		// Everything may match but nothing may be listed.
		return nil, p.totalM(), nil
	}
	total := p.totalM()
	if max == 0 {
		return nil, total, nil
	}
	t := p.trie()
	K := int32(min(max, 1<<30))

	// The exact end of the hull: price 0, fewest entries among the exact.
	d := &dp{a: a6{}, b: 1}
	t.pass(d)
	_, e0, _ := t.root(d)
	if e0 <= K {
		out, _ := t.build(d, p.width, e0, nil)
		return out, a6{}, nil
	}
	type point struct {
		e int32
		c a6
		a a6 // the price at which it was found (b == 0: the empty list)
		b uint64
	}
	lo := point{e: 0, c: total}
	hi := point{e: e0, c: a6{}, a: a6{}, b: 1}
	var bound a6
	for round := 0; ; round++ {
		if err := ctx.Err(); err != nil {
			return nil, a6{}, err
		}
		d.a, d.b = lo.c.sub(hi.c), uint64(hi.e-lo.e) // reuses d's arrays
		t.pass(d)
		G, emin, emax := t.root(d)
		if lb := lowerBound(G, d, K); bound.less(lb) {
			bound = lb
		}
		line := mul(lo.c, d.b).add(mul(d.a, uint64(lo.e)))
		done := G == line || (emin <= K && K <= emax)
		slog.DebugContext(ctx, "cidr: fit prefixes", "round", round, "nodes", len(t.nodes), "entries", [2]int32{lo.e, hi.e}, "tie", [2]int32{emin, emax}, "done", done)
		if done || round == maxRounds {
			var out []r6
			used := int32(-1)
			if done {
				out, used = t.build(d, p.width, K, nil)
			}
			if used < lo.e {
				// The greedy tie-break fell short of a point already
				// known, or the rounds ran out: rebuild that point (an
				// emin/emax target is always reached exactly).
				out = nil
				if lo.b != 0 {
					d.a, d.b = lo.a, lo.b
					t.pass(d)
					out, _ = t.build(d, p.width, lo.e, nil)
				}
			}
			return out, bound, nil
		}
		// G lies below the line: a new hull point between lo and hi.
		if emax < K {
			lo = point{emax, costAt(G, d, emax), d.a, d.b}
		} else {
			hi = point{emin, costAt(G, d, emin), d.a, d.b}
		}
	}
}

// costAt returns the loss of a minimizer of pass d with e entries.
func costAt(G u192, d *dp, e int32) a6 {
	return G.sub(mul(d.a, uint64(e))).divCeil(d.b)
}

// lowerBound returns ⌈(G − a·K)/b⌉, or 0 when that is negative.
func lowerBound(G u192, d *dp, K int32) a6 {
	ak := mul(d.a, uint64(K))
	if !ak.less(G) {
		return a6{}
	}
	return G.sub(ak).divCeil(d.b)
}
