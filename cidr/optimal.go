package cidr

// Exact aggregation with don't-care space.
//
// A list of prefixes matches the union of its prefixes; prefixes are nested
// or disjoint, so a shortest list can always be taken disjoint. For a block
// of the binary trie (a prefix) the shortest list inside it costs
//
//	0                           if the block holds no Match address,
//	1 (the block itself)        else if it holds no must-not address,
//	cost(lower) + cost(upper)   otherwise,
//
// since a block holding both can be neither taken whole nor skipped, and
// then no enclosing block can be taken either. This is ORTC's recursion
// (Draves, King, Venkatachary, Zill, INFOCOM 1999) for a union of prefixes
// rather than longest-match, with don't-care addresses free to go either
// way. It visits only the blocks that hold both classes: at most one path
// of ≤ width blocks per boundary between a Match and a must-not run.

// MinPrefixes returns a set with the shortest prefix list of all sets that
// match g: every address of g.Match and none outside g.Match ∪ g.DontCare.
// Its [Set.Prefixes] is that list. Each family is solved on its own and
// the result is optimal for each.
func (g Goal) MinPrefixes() Set {
	return Set{
		v4: narrow4(g.part4().minPrefixes()),
		v6: g.part6().minPrefixes(),
	}
}

func (p *part) minPrefixes() []r6 {
	if out, ok := p.trivial(); ok {
		return out
	}
	var out []r6
	var walk func(lo a6, plen, i, j int)
	walk = func(lo a6, plen, i, j int) {
		host := p.width - plen
		hi := lo.or(lowMask6(host))
		m, d := p.counts(lo, hi, i, j)
		if m.isZero() {
			return
		}
		// Must-not addresses: size − m − d, with the size 2^host (wrapping
		// to 0 only for the root of IPv6, never a leaf here).
		if hi.sub(lo).sub(m).sub(d).succ().isZero() {
			out = appendMerge(out, r6{lo, hi})
			return
		}
		mid := lo.or(bit6(host - 1))
		li, lj, ri, rj := p.split(mid, i, j)
		walk(lo, plen+1, li, lj)
		walk(mid, plen+1, ri, rj)
	}
	walk(a6{}, 0, 0, len(p.segs))
	return out
}

// bit6 returns 2^n for 0 ≤ n < 128.
func bit6(n int) a6 { return lowMask6(n).succ() }

// MinRanges returns a set with the fewest maximal ranges of all sets that
// match g (see [Goal.MinPrefixes]), for targets that take ranges. Each
// result range runs from a Match address to a Match address: two Match
// ranges share an output range exactly when only don't-care addresses lie
// between them, which no set matching g can do better, since a range
// holding a must-not address is not allowed.
func (g Goal) MinRanges() Set {
	return Set{
		v4: narrow4(g.part4().minRanges()),
		v6: g.part6().minRanges(),
	}
}

func (p *part) minRanges() []r6 {
	gs, _ := p.groups()
	out := make([]r6, len(gs))
	for i, gr := range gs {
		out[i] = gr.r
	}
	return out
}

// A group is a maximal run of Match ranges with only don't-care addresses
// between them; m counts its Match addresses.
type group struct {
	r r6
	m a6
}

// groups returns the partition's groups in order and, for each pair of
// neighbours, the must-not addresses between them (gaps[i] lies between
// groups i and i+1).
func (p *part) groups() (gs []group, gaps []a6) {
	var pending a6 // must-not addresses since the last Match segment
	var prevHi a6
	for k, s := range p.segs {
		if k > 0 && len(gs) > 0 {
			pending = pending.add(s.lo.sub(prevHi).sub(a6{0, 1}))
		}
		prevHi = s.hi
		if !s.m {
			continue
		}
		n := s.hi.sub(s.lo).succ()
		switch {
		case len(gs) > 0 && pending.isZero():
			gs[len(gs)-1].r.hi = s.hi
			gs[len(gs)-1].m = gs[len(gs)-1].m.add(n)
		default:
			if len(gs) > 0 {
				gaps = append(gaps, pending)
			}
			gs = append(gs, group{r6{s.lo, s.hi}, n})
		}
		pending = a6{}
	}
	return gs, gaps
}
