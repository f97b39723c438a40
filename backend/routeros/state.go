package routeros

import (
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/go-routeros/routeros/v3/proto"
	"go4.org/netipx"
)

// state is what a sync starts from: the managed list generations and
// every NAT rule, per family. Lists are read from the router, or taken
// from the [memo] of the last sync once cheap counts confirm it.
type state struct {
	lists   [2]map[string]*glist // by list name
	rules   [2][]*rrule          // in the router's order
	foreign [2]int               // tagged entries in lists not ours
	memo    bool                 // lists taken from the memo
}

// A glist is one managed list generation: its tagged entries, as read
// (entries, sorted by range) or as remembered (known). A read generation
// also has the technician's enabled entries (hand): one holding exactly a
// wanted address stands for it, and none is ever removed.
type glist struct {
	name    string
	key     listKey
	gen     string
	entries []entry  // enabled, parsed; sorted by range
	known   *mlist   // instead of entries: the remembered content
	junk    []uint64 // tagged but disabled or unreadable: always removed
	hand    map[netipx.IPRange]uint64
}

type entry struct {
	r  netipx.IPRange
	id uint64
}

// ranges walks the generation's entries in range order; id(i) is the id
// of the i-th.
func (g *glist) ranges() (iter.Seq[netipx.IPRange], func(i int) uint64) {
	if g.known != nil {
		ids := g.known.ids
		return allEntries(g.known.set, g.key.fam), func(i int) uint64 { return ids[i] }
	}
	es := g.entries
	return func(yield func(netipx.IPRange) bool) {
		for _, e := range es {
			if !yield(e.r) {
				return
			}
		}
	}, func(i int) uint64 { return es[i].id }
}

// ids returns the ids of every tagged entry of the generation.
func (g *glist) ids() []uint64 {
	if g.known != nil {
		if len(g.known.hand) == 0 {
			return g.known.ids
		}
		return slices.DeleteFunc(slices.Clone(g.known.ids), func(id uint64) bool { _, h := g.known.hand[id]; return h })
	}
	ids := make([]uint64, 0, len(g.entries)+len(g.junk))
	for _, e := range g.entries {
		ids = append(ids, e.id)
	}
	return append(ids, g.junk...)
}

// An rrule is a NAT rule as found.
type rrule struct {
	id      uint64
	props   map[string]string
	name    string // managed rule name; "" for a rule not ours
	comment string
}

var ruleProps = ".id,chain,action,protocol,dst-address,dst-port,to-addresses,to-ports,comment,disabled,dynamic," +
	strings.Join(matcherFields, ",")

// readState reads the managed entries with one query per family (entries
// carry the tag, so entries in other lists are never even fetched), the
// enabled untagged entries of each managed generation found (few: a
// technician's) and all NAT rules (their order is global, so all of them
// matter).
func readState(c *conn, n Names) (*state, error) {
	st := &state{}
	if err := readLists(c, n, st); err != nil {
		return nil, err
	}
	if err := readHand(c, n, st); err != nil {
		return nil, err
	}
	if err := readRules(c, n, st); err != nil {
		return nil, err
	}
	return st, nil
}

// readLists reads every tagged entry of each family into st.lists.
func readLists(c *conn, n Names, st *state) error {
	for fi := range 2 {
		lists := map[string]*glist{}
		var bad error
		words := []string{menu(fi) + "/address-list/print", "=.proplist=.id,list,address,disabled", "?comment=" + n.Tag}
		res, err := c.runRe(func(s *proto.Sentence) {
			name := attr(s, "list")
			g := lists[name]
			if g == nil {
				k, gen, ok := n.parseList(name)
				if !ok || famIndex(k.fam) != fi {
					st.foreign[fi]++ // a tagged entry in a list not ours: leave it
					return
				}
				g = &glist{name: name, key: k, gen: gen}
				lists[name] = g
			}
			id, ok := parseID(attr(s, ".id"))
			if !ok {
				if bad == nil {
					bad = errorf("%s: bad id %q", words[0], attr(s, ".id"))
				}
				return
			}
			r, ok := parseEntry(attr(s, "address"))
			if !ok || attr(s, "disabled") == "true" || r.From().Is4() != (k4(g.key)) {
				g.junk = append(g.junk, id)
				return
			}
			g.entries = append(g.entries, entry{r, id})
		}, words...)
		if err != nil {
			return err
		}
		if err := res.trapErr(words); err != nil {
			return err
		}
		if bad != nil {
			return bad
		}
		for _, g := range lists {
			slices.SortFunc(g.entries, func(a, b entry) int { return rangeCmp(a.r, b.r) })
		}
		st.lists[fi] = lists
	}
	return nil
}

// readHand reads, for each generation in st.lists, the enabled static
// entries not carrying the tag. Dynamic ones (a DNS name's children, which
// come and go with DNS) are left out: where one blocks an add after all,
// the add's trap finds it.
func readHand(c *conn, n Names, st *state) error {
	var qs []query
	for fi := range 2 {
		for _, name := range slices.Sorted(maps.Keys(st.lists[fi])) {
			g := st.lists[fi][name]
			qs = append(qs, query{
				words: []string{menu(fi) + "/address-list/print", "=.proplist=.id,address", "?list=" + name, "?comment=" + n.Tag, "?#!", "?disabled=false", "?dynamic=false"},
				onRe: func(s *proto.Sentence) {
					id, ok := parseID(attr(s, ".id"))
					r, ok2 := parseEntry(attr(s, "address"))
					if !ok || !ok2 || r.From().Is4() != k4(g.key) {
						return // a DNS name or junk: stands for no wanted entry
					}
					if g.hand == nil {
						g.hand = map[netipx.IPRange]uint64{}
					}
					g.hand[r] = id
				}})
		}
	}
	return c.batch(qs, 8)
}

// readRules reads every NAT rule of each family into st.rules.
func readRules(c *conn, n Names, st *state) error {
	return c.batch(ruleQueries(n, st), 2)
}

// ruleQueries are the prints that read every NAT rule of each family into
// st.rules, to send with other queries.
func ruleQueries(n Names, st *state) []query {
	var qs []query
	for fi := range 2 {
		var bad error
		words := []string{menu(fi) + "/nat/print", "=.proplist=" + ruleProps}
		st.rules[fi] = nil
		qs = append(qs, query{words: words, onRe: func(s *proto.Sentence) {
			props := make(map[string]string, len(s.List))
			for _, p := range s.List {
				props[p.Key] = p.Value
			}
			id, ok := parseID(props[".id"])
			if !ok {
				if bad == nil {
					bad = errorf("%s: bad id %q", words[0], props[".id"])
				}
				return
			}
			r := &rrule{id: id, props: props, comment: props["comment"]}
			if props["dynamic"] != "true" {
				r.name, _ = n.ruleName(r.comment)
			}
			st.rules[fi] = append(st.rules[fi], r)
		}, done: func(*result) error { return bad }})
	}
	return qs
}

func k4(k listKey) bool { return k.fam == 4 }

// merge walks a generation's entries against the wanted ones, both in
// range order, in one pass and without materialising either: keep(j, id)
// for wanted entry j present as id, add(j, r) for wanted entry j missing,
// remove(id) for an entry not wanted or a duplicate. The generation's
// i-th range in order has the id id(i).
func merge(have iter.Seq[netipx.IPRange], id func(i int) uint64, want iter.Seq[netipx.IPRange], keep func(j int, id uint64), add func(j int, r netipx.IPRange), remove func(id uint64)) {
	hv := newPuller(have)
	defer hv.stop()
	i := 0
	h, ok := hv.next()
	advance := func() {
		i++
		h, ok = hv.next()
	}
	j := 0
	for w := range want {
		for ok && rangeCmp(h, w) < 0 {
			remove(id(i))
			advance()
		}
		if ok && h == w {
			keep(j, id(i))
			for advance(); ok && h == w; advance() {
				remove(id(i)) // an old duplicate
			}
		} else {
			add(j, w)
		}
		j++
	}
	for ; ok; advance() {
		remove(id(i))
	}
}

// A puller is iter.Pull over a sequence, switching coroutines once per
// chunk of values rather than twice per value: at 100,000 entries the
// switches cost more than the diff itself.
type puller[T any] struct {
	pull func() ([]T, bool)
	stop func()
	buf  []T
}

const pullChunk = 256

func newPuller[T any](seq iter.Seq[T]) *puller[T] {
	p := &puller[T]{}
	p.pull, p.stop = iter.Pull(func(yield func([]T) bool) {
		buf := make([]T, 0, pullChunk)
		for v := range seq {
			if buf = append(buf, v); len(buf) == pullChunk {
				if !yield(buf) {
					return
				}
				buf = buf[:0] // the consumer is done with it: it asked for more
			}
		}
		if len(buf) > 0 {
			yield(buf)
		}
	})
	return p
}

func (p *puller[T]) next() (T, bool) {
	if len(p.buf) == 0 {
		var ok bool
		if p.buf, ok = p.pull(); !ok || len(p.buf) == 0 {
			var zero T
			return zero, false
		}
	}
	v := p.buf[0]
	p.buf = p.buf[1:]
	return v, true
}

// A gdiff is what turns a generation into a wanted list: ids[j] is the id
// of wanted entry j where present (ours, or a hand entry: then in hand),
// adds the missing ones, removes the entries of ours not wanted; cost
// counts the commands' entries, junk included.
type gdiff struct {
	ids     []uint64
	hand    map[uint64]string
	adds    []addition
	removes []uint64
	cost    int
}

// diffOf diffs g against want. A remembered generation holding exactly
// the wanted set needs no walk. A hand entry no longer wanted is
// forgotten, not removed.
func diffOf(g *glist, want *dlist) *gdiff {
	if g.known != nil && len(g.junk) == 0 && g.known.set.Equal(want.set) {
		return &gdiff{ids: g.known.ids, hand: g.known.hand}
	}
	d := &gdiff{ids: make([]uint64, want.n)}
	var known map[uint64]string
	if g.known != nil {
		known = g.known.hand
	}
	setHand := func(id uint64, r netipx.IPRange) {
		if d.hand == nil {
			d.hand = map[uint64]string{}
		}
		d.hand[id] = entryAddress(r)
	}
	have, id := g.ranges()
	merge(have, id, want.all(),
		func(j int, id uint64) {
			d.ids[j] = id
			if a, ok := known[id]; ok {
				if d.hand == nil {
					d.hand = map[uint64]string{}
				}
				d.hand[id] = a
			}
		},
		func(j int, r netipx.IPRange) {
			if id, ok := g.hand[r]; ok {
				d.ids[j] = id
				setHand(id, r)
				return
			}
			d.adds = append(d.adds, addition{j, r})
		},
		func(id uint64) {
			if _, ok := known[id]; !ok {
				d.removes = append(d.removes, id)
			}
		})
	d.cost = len(d.adds) + len(d.removes) + len(g.junk)
	return d
}
