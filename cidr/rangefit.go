package cidr

import (
	"context"
	"fmt"
)

// FitRanges returns the range list of at most max entries per family that
// misclassifies the fewest cared-for addresses of g (counted as in
// [Goal.FitPrefixes]), for targets that take ranges (RouterOS IPv4 address
// lists, nftables interval sets). The result is optimal: its loss equals
// its bound. It takes O(r log r) time for r ranges of [Goal.MinRanges].
func (g Goal) FitRanges(ctx context.Context, max int) (Fit, error) {
	if max < 0 {
		return Fit{}, ErrBudget
	}
	v4, err := g.part4().fitRanges(ctx, max)
	if err != nil {
		return Fit{}, fmt.Errorf("cidr: fitting IPv4 ranges: %w", err)
	}
	v6, err := g.part6().fitRanges(ctx, max)
	if err != nil {
		return Fit{}, fmt.Errorf("cidr: fitting IPv6 ranges: %w", err)
	}
	f := Fit{Set: Set{v4: narrow4(v4), v6: v6}}
	f.Entries4, f.Entries6 = len(f.Set.v4), len(f.Set.v6)
	f.Loss = g.Loss(f.Set)
	f.Bound4, f.Bound6 = f.Loss.Total4(), f.Loss.Total6()
	return f, nil
}

// Budgeted ranges.
//
// A range list can always be shrunk to start and end on Match addresses
// without losing anything, so it is a choice of runs of consecutive groups
// (see [part.groups]): a run costs the must-not addresses of the gaps it
// bridges, a group outside every run costs its Match addresses, and the
// entries are the runs. On the alternating sequence group, gap, group, …,
// group, repeat until at most max runs remain: take the element x of least
// cost μ and
//
//   - if x is a gap, fuse it with its two groups into one group of cost
//     m(left) + m(right) − μ (bridging it is now implied by taking the
//     fused group; leaving the fused group out costs both groups);
//   - if x is an inner group, fuse it with its two gaps into one gap of
//     cost c(left) + c(right) − μ;
//   - if x is a group at an end, drop it and its one gap.
//
// Each step pays μ and removes one run. Fused costs stay positive, so the
// sequence keeps alternating.
//
// Why this is optimal (the classic argument for k disjoint maximum-sum
// subarrays): for every k below the current number of groups P there is an
// optimal list of ≤ k runs in which x and its neighbours are all taken or
// all left, or, for an end group, x is left — so the fused sequence, whose
// cost is the original's less a constant, has the same optimum. Take an
// optimal list S. A list of fewer than P runs pays for some element y
// (a bridged gap or a left group), and cost(y) ≥ μ. If x is a gap left
// between two taken groups, bridge x and un-pay y (split at y, or take y
// as a run of its own): runs unchanged, cost changes by μ − cost(y) ≤ 0. If
// x is a gap with one neighbour taken and the other left, extend the run
// over x and the left group: cost changes by μ − m(group) ≤ 0. If x is a
// group taken alone, leave it and un-pay some y ≠ x: same runs, cost
// +μ − cost(y) ≤ 0. If x is a taken group at the edge of a longer run, leave
// it and the gap beside it: cost μ − c(gap) ≤ 0. Every other configuration
// already has the wanted form. Repeating until P ≤ k leaves every group
// taken with nothing bridged, which costs the constant.

// relt is an element of the alternating sequence: a group (odd position
// counting from 1) or a gap. from and to are the first and last original
// groups it covers.
type relt struct {
	cost       a6
	group      bool
	prev, next int32
	from, to   int32
	ver        int32 // bumped when the element changes, to retire heap entries
	dead       bool
}

type hent struct {
	cost a6
	i    int32
	ver  int32
}

// rheap is a binary min-heap of hent, by cost then position (for a
// deterministic result). It is written out rather than container/heap,
// whose interface boxes every element pushed.
type rheap []hent

func (h rheap) less(i, j int) bool {
	if h[i].cost != h[j].cost {
		return h[i].cost.less(h[j].cost)
	}
	return h[i].i < h[j].i
}

func (h rheap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h rheap) down(i int) {
	n := len(h)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if j+1 < n && h.less(j+1, j) {
			j++
		}
		if !h.less(j, i) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func (h *rheap) push(e hent) {
	*h = append(*h, e)
	h.up(len(*h) - 1)
}

func (h *rheap) pop() hent {
	old := *h
	top := old[0]
	old[0] = old[len(old)-1]
	*h = old[:len(old)-1]
	h.down(0)
	return top
}

func (p *part) fitRanges(ctx context.Context, max int) ([]r6, error) {
	gs, gaps := p.groups()
	if len(gs) <= max {
		out := make([]r6, len(gs))
		for i, g := range gs {
			out[i] = g.r
		}
		return out, nil
	}
	n := 2*len(gs) - 1
	es := make([]relt, n)
	h := make(rheap, 0, n)
	for i := range es {
		e := &es[i]
		e.prev, e.next = int32(i-1), int32(i+1)
		if i == n-1 {
			e.next = -1
		}
		if i%2 == 0 {
			e.group, e.cost = true, gs[i/2].m
			e.from, e.to = int32(i/2), int32(i/2)
		} else {
			e.cost = gaps[i/2]
			e.from, e.to = int32(i/2), int32(i/2+1) // its neighbours; unused
		}
		h = append(h, hent{e.cost, int32(i), 0})
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	runs := len(gs)
	for steps := 0; runs > max; steps++ {
		if steps%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		top := h.pop()
		x := &es[top.i]
		if x.dead || x.ver != top.ver {
			continue
		}
		runs--
		if x.group && (x.prev < 0 || x.next < 0) {
			// An end group: drop it and its gap, if any.
			nb := x.prev
			if nb < 0 {
				nb = x.next
			}
			x.dead = true
			if nb >= 0 {
				y := &es[nb]
				y.dead = true
				p2 := y.prev
				if p2 == top.i {
					p2 = y.next
				}
				if p2 >= 0 {
					if es[p2].prev == nb {
						es[p2].prev = -1
					} else {
						es[p2].next = -1
					}
				}
			}
			continue
		}
		// Fuse x with both neighbours into x.
		l, r := &es[x.prev], &es[x.next]
		x.cost = l.cost.add(r.cost.sub(x.cost))
		x.group = !x.group
		x.from, x.to = l.from, r.to
		l.dead, r.dead = true, true
		x.prev, x.next = l.prev, r.next
		if x.prev >= 0 {
			es[x.prev].next = top.i
		}
		if x.next >= 0 {
			es[x.next].prev = top.i
		}
		x.ver++
		h.push(hent{x.cost, top.i, x.ver})
	}
	var out []r6
	for i := range es {
		if e := &es[i]; !e.dead && e.group {
			out = append(out, r6{gs[e.from].r.lo, gs[e.to].r.hi})
		}
	}
	return out, nil
}
