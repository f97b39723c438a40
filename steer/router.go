package steer

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/internal/addrword"
	"go4.org/netipx"
)

// A Router is a plan compiled for routing connections in process: the
// fast form of [Plan.Route], with the same answers (proven by property
// tests), allocation-free and safe for concurrent use. A Router is made
// by [Plan.Router] and used through the pointer it returns: the zero
// Router is not usable (its methods panic), and its Entries point into
// it, so a Router in use must not be overwritten or copied.
//
// Inside, the source address space is cut into pieces on which every
// destination (entry point address and port) applies the same rule: a
// source's label in a [cidr.Table] says, for every destination at once,
// which rule wins there. Each destination also has its own index of the
// sources by /16, one byte each: the rule where all of the /16 has one,
// else "ask the table". So a Route is a comparison with the
// destinations (the first four kept in the Router itself, as two words
// and a port each), one read of that index, or, for the /16s that hold a
// boundary, one table lookup and one load of the rule for the label,
// whatever the number of rules and sets; only hash-split rules are left
// to evaluate per connection. An [Entry] skips the comparison. The table
// has only the boundaries of the plan's sets and source ranges and does
// not grow with the number of entry points: the seed's MX rotation gives
// each of its halves one label shared by every MX. (A plan whose destinations need
// more than [cidr.MaxLabel] label combinations gets one table per
// destination.) Its size is the table's and 64 KiB per destination.
type Router struct {
	// near is the first four destinations (but ::) as find compares
	// them, in the Router itself, so that find has no slice to load and
	// no counter. Four: the seed's two MX in two families. The other
	// destinations take miss, which compares each one's netip.Addr.
	near [4]destKey
	// nearIndex[i] is near[i]'s Entry's fast6 (which points here), in
	// the Router, so that find reads it at a constant offset with no
	// pointer to load and no nil check.
	nearIndex [4]fastIndex
	dests     []dest // IPv6 first, then IPv4
	// rules[i+1] points to plan rule i (so that a Decision equals
	// Plan.Route's), rules[0] is nil; hashes[i] is rule i's hash.
	rules  []*Rule
	hashes []HashRange
	// chains[c] are plan rules to try in order, the first whose hash
	// matches winning: the rules whose address conditions hold on a piece,
	// up to the first without a hash.
	chains [][]int32
	tables int // distinct tables, for String
	labels int // labels over all tables, for String
}

// A dest is one destination of a Router.
type dest struct {
	dst  netip.Addr
	port uint16
	e    Entry
}

// A destKey is a destination as find compares it, apart from the rest of
// its Entry so that the comparisons read one or two cache lines at
// constant offsets: the 16-byte form of its address as two words,
// which drops what Plan.Route drops (zones, and IPv4 against
// IPv4-mapped), its port, and its Entry (for IPv4 and slow sources).
// 32 bytes: two keys a cache line.
//
// The invalid address has the words of ::, so a destination :: (valid,
// if useless) is not kept near (miss finds it by its netip.Addr). The
// unused keys are {::, port 0}, which no entry point has (Plan.Validate
// rejects port 0), with a nearIndex of zeros (no rule, never fastSlow,
// so their nil Entry is not read): the invalid address or :: at port 0
// match them, and no rule.
type destKey struct {
	hi, lo uint64
	port   uint16
	e      *Entry
}

// An Entry is the part of a [Router] that routes the connections to one
// entry point (destination address and port): [Router.Route] with the
// destination resolved in advance, as a listener knows it. It is
// immutable, allocation-free and safe for concurrent use; a nil *Entry
// routes nothing.
//
// Inside, a source's /16 in the entry's own index gives the rule that
// routes it (for most sources), or says to ask the table; the table's
// label gives the rule.
type Entry struct {
	// fast4 and fast6 are the entry's index of IPv4 and IPv6 sources:
	// per /16, the plan rule + 1 that routes all of it here (0: none),
	// or fastSlow. One byte an entry, so that the part a stream of
	// sources reads (8 KiB for all of 2000::/3) stays in L1; the index
	// of the other family is a shared one of no rules (fast4 of an IPv6
	// entry), or of no rules but ::/16 (fast6 of an IPv4 entry, for
	// IPv4-mapped sources). fast6[0] is always fastSlow: IPv4,
	// IPv4-mapped and invalid sources read zeros there (find reads
	// fast6 first, so that an IPv6 source is not asked its family).
	fast4, fast6 *fastIndex
	tab          *cidr.Table // shared by the destinations that share labels
	// rule[v] is, for the label v-1 (v = 0: no label), the plan rule
	// that routes the label's sources here, noRule, or -2-c: then the
	// rules of chains[c] are tried, by their hashes.
	rule []int32
	rt   *Router // its rules and hash chains
}

// A fastIndex is an Entry's index of one family's sources by their /16.
type fastIndex [1 << 16]uint8

// fastSlow marks a /16 of a fastIndex whose sources the table must
// label: its sources have more than one label, or a rule beyond
// fastSlow-2, or a hash chain.
const fastSlow = 1<<8 - 1

// The indexes of the family an entry is not of: sources of the other
// family match no rule, except IPv4-mapped ones for an IPv4 entry.
var (
	noFast4 = new(fastIndex)
	noFast6 = func() *fastIndex { f := new(fastIndex); f[0] = fastSlow; return f }()
)

const noRule = -1

// errLabels reports a partition with more label combinations than a
// cidr.Table holds.
var errLabels = errors.New("more than cidr.MaxLabel distinct rule combinations")

// maxLabels is the number of labels one table may have: a variable so that
// tests can force the one-table-per-destination fallback on small plans.
var maxLabels = cidr.MaxLabel + 1

// Router compiles the plan into a [Router]. The plan must be valid
// ([Plan.Validate]). The Router's Decisions point into the plan's Rules, as
// Plan.Route's do (so that they compare equal); the Router does not
// otherwise change when the plan does, and, like any compiled plan, the
// plan's Rules must not be modified once it is in use.
func (p *Plan) Router() (*Router, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rt := &Router{rules: []*Rule{nil}}
	for i := range p.Rules {
		rt.rules = append(rt.rules, &p.Rules[i])
		rt.hashes = append(rt.hashes, p.Rules[i].SrcHash)
	}
	// Destinations in order of first appearance; rules keep plan order.
	b := &routerBuild{p: p, rt: rt, chainID: map[string]int32{}}
	byDest := map[destination]int{}
	for i := range p.Rules {
		r := &p.Rules[i]
		d := destination{r.Family, r.DstAddr, r.DstPort}
		j, ok := byDest[d]
		if !ok {
			j = len(rt.dests)
			byDest[d] = j
			rt.dests = append(rt.dests, dest{dst: r.DstAddr, port: r.DstPort})
			b.fam = append(b.fam, r.Family)
			b.rules = append(b.rules, nil)
		}
		b.rules[j] = append(b.rules[j], i)
	}
	all := make([]int, len(rt.dests))
	for i := range all {
		all[i] = i
	}
	err := b.group(all)
	if errors.Is(err, errLabels) {
		// Too many combinations to share: one table per destination.
		rt.tables, rt.labels = 0, 0
		for i := range all {
			if err = b.group([]int{i}); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("steer: router: %w", err)
	}
	// IPv6 destinations first: their lookups are the cheap ones, where
	// the scan shows most.
	slices.SortStableFunc(rt.dests, func(x, y dest) int {
		return cmp.Compare(y.dst.BitLen(), x.dst.BitLen())
	})
	n := 0
	for i := range rt.dests {
		d := &rt.dests[i]
		if n == len(rt.near) || d.dst == netip.IPv6Unspecified() {
			continue
		}
		b := d.dst.As16()
		rt.nearIndex[n] = *d.e.fast6
		d.e.fast6 = &rt.nearIndex[n]
		rt.near[n] = destKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), d.port, &d.e}
		n++
	}
	return rt, nil
}

// routerBuild is the state of Plan.Router.
type routerBuild struct {
	p       *Plan
	rt      *Router
	fam     []int   // per destination
	rules   [][]int // per destination, its plan rules in order
	chainID map[string]int32
}

// matchCond is a rule's address conditions, which make its match set
// within its family.
type matchCond struct {
	src    netipx.IPRange
	set    string
	setNot bool
}

// A span is an inclusive range of keys: IPv4 addresses as the low 32 bits,
// IPv6 addresses as all 128.
type span struct{ lo, hi u128 }

// group builds the table shared by the destinations ds.
func (b *routerBuild) group(ds []int) error {
	var tb cidr.TableBuilder
	// Per label, the family it belongs to and the win value of each
	// destination of that family in ds.
	type labelInfo struct {
		fam  int
		wins []int32
	}
	var labels []labelInfo
	var buf []netip.Prefix
	ix := newIndex()
	for _, fam := range []int{4, 6} {
		var fds []int // the destinations of ds of this family
		for _, d := range ds {
			if b.fam[d] == fam {
				fds = append(fds, d)
			}
		}
		if len(fds) == 0 {
			continue
		}
		last := u128{^uint64(0), ^uint64(0)}
		if fam == 4 {
			last = u128{0, 0xffffffff}
		}
		// The match sets of the rules of fds (rules with the same address
		// conditions, such as the seed's on every MX, share one), and the
		// cuts between them.
		var matches [][]span
		var which []int // per rule of fds in order, its match set
		byCond := map[matchCond]int{}
		for _, d := range fds {
			for _, i := range b.rules[d] {
				r := &b.p.Rules[i]
				mc := matchCond{r.Src, r.SrcSet, r.SrcSetNot}
				j, ok := byCond[mc]
				if !ok {
					j = len(matches)
					byCond[mc] = j
					matches = append(matches, spans(fam, staticMatch(b.p, r)))
				}
				which = append(which, j)
			}
		}
		n := 1
		for _, m := range matches {
			n += 2 * len(m)
		}
		cuts := make([]u128, 1, n)
		for _, m := range matches {
			for _, s := range m {
				cuts = append(cuts, s.lo)
				if s.hi != last {
					cuts = append(cuts, s.hi.succ())
				}
			}
		}
		cuts = sortU128(cuts)
		cur := make([]int, len(matches)) // per match set, the first span not ending before the cut
		sig := make([]byte, len(matches))
		// Labels by membership of the match sets (a cache) and by what
		// wins at each destination (what a label is): the same wins
		// under different memberships share a label.
		bySig := map[string]int{}
		byWins := map[string]int{} // -1: no rule anywhere
		wins := make([]int32, len(fds))
		winKey := make([]byte, 4*len(fds))
		runLabel, runStart := -2, u128{}
		flush := func(end u128) {
			if runLabel == -2 {
				return
			}
			ix.mark(fam, runLabel, runStart, end)
			if runLabel < 0 {
				return
			}
			buf = appendRunPrefixes(buf[:0], fam, runStart, end)
			for _, p := range buf {
				tb.AddPrefix(p, uint16(runLabel))
			}
		}
		for _, c := range cuts {
			for j, m := range matches {
				for cur[j] < len(m) && m[cur[j]].hi.less(c) {
					cur[j]++
				}
				sig[j] = 0
				if cur[j] < len(m) && !c.less(m[cur[j]].lo) {
					sig[j] = 1
				}
			}
			l, ok := bySig[string(sig)]
			if !ok {
				// What wins at each destination, from the membership of
				// its rules.
				j, some := 0, false
				for k, d := range fds {
					var chain []int32
					for _, i := range b.rules[d] {
						if sig[which[j]] == 1 && (len(chain) == 0 || b.p.Rules[chain[len(chain)-1]].SrcHash.Mod != 0) {
							chain = append(chain, int32(i))
						}
						j++
					}
					wins[k] = b.win(chain)
					some = some || wins[k] != noRule
				}
				for k, w := range wins {
					binary.LittleEndian.PutUint32(winKey[4*k:], uint32(w))
				}
				if l, ok = byWins[string(winKey)]; !ok {
					l = -1
					if some {
						l = len(labels)
						labels = append(labels, labelInfo{fam, slices.Clone(wins)})
						if len(labels) > maxLabels {
							return errLabels
						}
					}
					byWins[string(winKey)] = l
				}
				bySig[string(sig)] = l
			}
			if l != runLabel {
				flush(c.pred())
				runLabel, runStart = l, c
			}
		}
		flush(last)
	}
	t, err := tb.Table()
	if err != nil {
		return err
	}
	for _, d := range ds {
		dd := &b.rt.dests[d].e
		dd.tab, dd.rt = t, b.rt
		dd.rule = make([]int32, 1+len(labels))
		dd.rule[0] = noRule
		k := 0 // d's place among the destinations of its family
		for _, e := range ds[:slices.Index(ds, d)] {
			if b.fam[e] == b.fam[d] {
				k++
			}
		}
		for l, li := range labels {
			w := int32(noRule)
			if li.fam == b.fam[d] {
				w = li.wins[k]
			}
			dd.rule[1+l] = w
		}
		if b.fam[d] == 4 {
			dd.fast4, dd.fast6 = dd.fastIndex(&ix.v4), noFast6
		} else {
			dd.fast4, dd.fast6 = noFast4, dd.fastIndex(&ix.v6)
		}
	}
	b.rt.tables++
	b.rt.labels += len(labels)
	return nil
}

// win returns the win value of a chain of rules.
func (b *routerBuild) win(chain []int32) int32 {
	switch {
	case len(chain) == 0:
		return noRule
	case b.p.Rules[chain[0]].SrcHash.Mod == 0:
		return chain[0]
	}
	var kb strings.Builder
	for _, i := range chain {
		fmt.Fprintf(&kb, "%d,", i)
	}
	id, ok := b.chainID[kb.String()]
	if !ok {
		id = int32(len(b.rt.chains))
		b.chainID[kb.String()] = id
		b.rt.chains = append(b.rt.chains, chain)
	}
	return -2 - id
}

// spans returns the ranges of s in the family, as keys.
func spans(fam int, s cidr.Set) []span {
	if fam == 4 {
		s = s.IPv4()
	} else {
		s = s.IPv6()
	}
	out := make([]span, 0, s.NumRanges())
	if fam == 4 {
		for r := range s.AllRanges() {
			out = append(out, span{u128{0, uint64(addrU32(r.From()))}, u128{0, uint64(addrU32(r.To()))}})
		}
		return out
	}
	for r := range s.AllRanges() {
		out = append(out, span{key6(r.From()), key6(r.To())})
	}
	return out
}

// appendPrefixes appends the minimal prefix list of the keys lo-hi.
func appendPrefixes(dst []netip.Prefix, fam int, lo, hi u128) []netip.Prefix {
	if fam == 4 {
		return netipx.IPRangeFrom(u32addr(uint32(lo.lo)), u32addr(uint32(hi.lo))).AppendPrefixes(dst)
	}
	return netipx.IPRangeFrom(lo.addr(), hi.addr()).AppendPrefixes(dst)
}

// The IPv4-mapped keys, ::ffff:0:0/96.
var (
	mapped4Lo = u128{0, 0xffff << 32}
	mapped4Hi = u128{0, 0xffff_ffff_ffff}
)

// appendRunPrefixes appends the prefixes of a run of the family's keys,
// lo-hi, to be labelled in the table. An IPv6 run leaves out
// ::ffff:0:0/96: a cidr.Table holds prefixes there as IPv4, where they
// would label IPv4 sources with what wins for IPv6 destinations, and
// Plan.Route matches an IPv4-mapped source as IPv4, never by an IPv6
// rule.
func appendRunPrefixes(dst []netip.Prefix, fam int, lo, hi u128) []netip.Prefix {
	if fam == 4 || hi.less(mapped4Lo) || mapped4Hi.less(lo) {
		return appendPrefixes(dst, fam, lo, hi)
	}
	if lo.less(mapped4Lo) {
		dst = appendPrefixes(dst, fam, lo, mapped4Lo.pred())
	}
	if mapped4Hi.less(hi) {
		dst = appendPrefixes(dst, fam, mapped4Hi.succ(), hi)
	}
	return dst
}

// sortU128 sorts keys and removes duplicates.
func sortU128(keys []u128) []u128 {
	slices.SortFunc(keys, func(a, b u128) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	return slices.Compact(keys)
}

// Route decides where a TCP connection from src to dst:port goes, as
// [Plan.Route] does, returning an equal Decision. It does not allocate.
//
// It is a comparison with the destinations, one read of the
// destination's /16 index (which answers most sources without the table)
// or one table lookup, and one load of the rule, the Decision being
// returned in registers. An [Entry] (the destination resolved once, as a listener
// knows it) skips the comparison.
func (rt *Router) Route(src, dst netip.Addr, port uint16) Decision {
	v := rt.find(src, dst, port)
	return Decision{rt.rules[v], v}
}

// Decision returns the Decision of the plan's rule i, as Route returns it:
// the zero Decision (no match) for an i out of range.
func (rt *Router) Decision(i int) Decision {
	if uint(i+1) < uint(len(rt.rules)) {
		return Decision{rt.rules[i+1], i + 1}
	}
	return Decision{}
}

// Rule returns the index in the plan's Rules of the rule that routes a TCP
// connection from src to dst:port, or -1 when none does: Route's
// Decision.Rule(). It does not allocate.
func (rt *Router) Rule(src, dst netip.Addr, port uint16) int {
	return rt.find(src, dst, port) - 1
}

// find returns the index in decisions (the plan's rule + 1, 0 for none)
// of the connection from src to dst:port.
//
// Where netip.Addr's words can be read in place (checked once, here), the
// destination is two words compared with the near keys, and the source's
// /16 one shift of a register; otherwise, and for the destinations that
// are not near, miss answers through the public API.
//
// It is nosplit, which drops the stack check from its fast path (three
// instructions, measured ~0.15 ns of a ~3.5 ns Route); its frame is small
// and the calls it makes check the stack themselves, which the linker
// verifies.
//
//go:nosplit
func (rt *Router) find(src, dst netip.Addr, port uint16) int {
	if addrword.Fast() {
		hi, lo := addrword.Words(dst)
		// Written out: Go does not unroll the loop, whose counter
		// costs as much as a comparison.
		var k *destKey
		var f *fastIndex
		switch n := &rt.near; {
		case n[0].is(hi, lo, port):
			k, f = &n[0], &rt.nearIndex[0]
		case n[1].is(hi, lo, port):
			k, f = &n[1], &rt.nearIndex[1]
		case n[2].is(hi, lo, port):
			k, f = &n[2], &rt.nearIndex[2]
		case n[3].is(hi, lo, port):
			k, f = &n[3], &rt.nearIndex[3]
		default:
			return rt.miss(src, dst, port)
		}
		// Entry.find, written out: it does not inline, and a call
		// costs as much as the rest. An IPv4 source reads fast6[0],
		// always fastSlow, and then its own index.
		shi, slo := addrword.Words(src)
		v := f[shi>>48]
		if v == fastSlow && src.Is4() {
			v = k.e.fast4[uint16(slo>>16)]
		}
		if v != fastSlow {
			return int(v)
		}
		return k.e.slow(src)
	}
	return rt.miss(src, dst, port)
}

// is reports whether k is the destination of the words hi, lo and the port.
func (k *destKey) is(hi, lo uint64, port uint16) bool {
	return k.hi == hi && k.lo == lo && k.port == port
}

// miss is find for a destination that is not near (or for every
// destination, where addrword cannot read in place): Entry's search.
//
//go:noinline
func (rt *Router) miss(src, dst netip.Addr, port uint16) int {
	if e := rt.Entry(dst, port); e != nil {
		return e.find(src)
	}
	return 0
}

// Entry returns the Entry routing the connections to dst:port, or nil if
// no rule of the plan has that destination. IPv4-mapped destinations are
// unmapped and zones ignored, as in [Plan.Route].
func (rt *Router) Entry(dst netip.Addr, port uint16) *Entry {
	ds := rt.dests
	for i := range ds {
		if d := &ds[i]; d.port == port && d.dst == dst {
			return &d.e
		}
	}
	if u := dst.Unmap().WithZone(""); u != dst {
		return rt.Entry(u, port)
	}
	return nil
}

// Route decides where a TCP connection from src to the entry point goes,
// as [Router.Route] does. It does not allocate.
func (e *Entry) Route(src netip.Addr) Decision {
	if e == nil {
		return Decision{}
	}
	v := e.find(src)
	return Decision{e.rt.rules[v], v}
}

// Rule returns the index in the plan's Rules of the rule that routes a TCP
// connection from src to the entry point, or -1: Route's
// Decision.Rule(). It does not allocate.
func (e *Entry) Rule(src netip.Addr) int {
	if e == nil {
		return noRule
	}
	return e.find(src) - 1
}

// find returns the plan's rule + 1 for src (0 for none): the /16's in the
// index, else the table's. IPv6 sources are answered from fast6 without a
// test of their family; IPv4 ones fall into fast6[0], always fastSlow.
func (e *Entry) find(src netip.Addr) int {
	v := e.fast6[addrword.Hi16(src)]
	if v == fastSlow && src.Is4() {
		v = e.fast4[uint16(addrword.Lo64(src)>>16)]
	}
	if v != fastSlow {
		return int(v)
	}
	return e.slow(src)
}

// slow is find for the sources the index leaves to the table.
func (e *Entry) slow(src netip.Addr) int {
	v := 0
	if l, ok := e.tab.Lookup(src); ok {
		v = int(l) + 1
	}
	if r := e.rule[v]; r >= noRule {
		return int(r) + 1
	}
	return e.chain(src, v) + 1
}

// chain returns the first rule of the hash chain of label v-1 whose hash
// holds src.
func (e *Entry) chain(src netip.Addr, v int) int {
	for _, ri := range e.rt.chains[-2-e.rule[v]] {
		if h := e.rt.hashes[ri]; h.Mod == 0 || h.Contains(src) {
			return int(ri)
		}
	}
	return noRule
}

// fastIndex returns the entry's index of the family whose labels ix has
// (v4 or v6 of a Router's index): the /16s of one label whose rule is
// not a hash chain and fits a byte get it, the others fastSlow.
func (e *Entry) fastIndex(ix *[1 << 16]uint16) *fastIndex {
	f := new(fastIndex)
	for k, x := range ix {
		f[k] = fastSlow
		if x != indexMixed {
			if r := e.rule[x]; r >= noRule && r+1 < fastSlow {
				f[k] = uint8(r + 1)
			}
		}
	}
	return f
}

// An index is the labels of a table's sources by /16, from which
// Plan.Router derives each Entry's own index: per family, for each /16 of
// sources that has one label, the label + 1 (0 where that is no label),
// and indexMixed where the table must be asked. The zero index has no
// labels, as a family for which the table has no runs, except that ::/16
// must be indexMixed: IPv4-mapped sources fall there.
type index struct {
	v4, v6 [1 << 16]uint16
}

const indexMixed = 1<<16 - 1 // above cidr.MaxLabel + 1

// newIndex returns an index of no labels.
func newIndex() *index {
	ix := new(index)
	ix.v6[0] = indexMixed
	return ix
}

// mark records the run lo-hi of a partition of the family's keys labelled
// l (-1: none): the /16s it covers get its value, those it covers in part
// indexMixed. Runs are maximal, so no other run covers those wholly.
func (ix *index) mark(fam, l int, lo, hi u128) {
	v := uint16(l + 1)
	top, a, b := ix.v6[:], int(lo.hi>>48), int(hi.hi>>48)
	starts := lo.hi<<16 == 0 && lo.lo == 0
	ends := ^hi.hi<<16 == 0 && hi.lo == ^uint64(0)
	if fam == 4 {
		top, a, b = ix.v4[:], int(lo.lo>>16), int(hi.lo>>16)
		starts, ends = uint16(lo.lo) == 0, uint16(hi.lo) == 0xffff
	}
	for k := a; k <= b; k++ {
		if (k == a && !starts) || (k == b && !ends) {
			top[k] = indexMixed
		} else {
			top[k] = v
		}
	}
	if fam == 6 {
		ix.v6[0] = indexMixed
	}
}

// String summarises the router, for debugging.
func (rt *Router) String() string {
	return fmt.Sprintf("%d destinations, %d tables, %d labels, %d hash chains", len(rt.dests), rt.tables, rt.labels, len(rt.chains))
}

// u128 is an address as a 128-bit integer.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) succ() u128 {
	if a.lo++; a.lo == 0 {
		a.hi++
	}
	return a
}

func (a u128) pred() u128 {
	if a.lo--; a.lo == ^uint64(0) {
		a.hi--
	}
	return a
}

func key6(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (a u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}
