package routeros

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

// A memo is what a Router's last successful Apply left on the router:
// every managed list generation with its content and the id of each entry,
// and the count of tagged entries per family. The next Apply confirms it
// with a few count queries (see [checkMemo]) instead of reading every
// entry, then diffs the plan against it and sends only the changes.
//
// Invariants: ids[i] is the router's id of the i-th entry of
// allEntries(set, key.fam), and len(ids) is their number; the ids in hand
// are of enabled entries not ours that hold exactly a wanted address (see
// [mlist]); total[fi] is the number of entries carrying the tag in family
// fi, in any list (ours less the hand entries, plus foreign[fi] in lists
// not ours). A memo is only kept when the sync that
// made it completed and every id is known; any doubt drops it, and the
// next Apply reads the router in full.
type memo struct {
	addr    string
	names   Names
	lists   [2][]*mlist // sorted by name
	total   [2]int
	foreign [2]int
}

// An mlist is one remembered list generation. The content shares the
// plan's immutable cidr.Set, so remembering it costs only the ids: 8 bytes
// per entry.
//
// A technician's untagged entry holding exactly a wanted address stands
// for it (RouterOS refuses a second entry with that address, and the list
// routes it anyway): its id is in ids like ours, and in hand, with the
// address as sent, so that it is checked by id and never removed.
type mlist struct {
	name string
	key  listKey
	gen  string
	set  cidr.Set // one family
	ids  []uint64
	hand map[uint64]string // usually nil
	// top is the largest id in ids and topAddr that entry's address ("" if
	// it is no prefix): a router that renumbered its ids (a reboot) no
	// longer holds it, even when every count is unchanged.
	top     uint64
	topAddr string
}

// setTop finds top and topAddr.
func (ml *mlist) setTop() {
	ml.top, ml.topAddr = 0, ""
	k := -1
	for i, id := range ml.ids {
		if id > ml.top {
			ml.top, k = id, i
		}
	}
	i := 0
	for r := range allEntries(ml.set, ml.key.fam) {
		if i == k {
			// How RouterOS prints a range that is no prefix is
			// unconfirmed: such an entry is checked by id and list only.
			if _, ok := r.Prefix(); ok {
				ml.topAddr = entryAddress(r)
			}
			return
		}
		i++
	}
}

// tagged is the number of the generation's entries that are ours.
func (ml *mlist) tagged() int { return len(ml.ids) - len(ml.hand) }

// state turns the memo into the state a sync diffs against.
func (m *memo) state() *state {
	st := &state{memo: true, foreign: m.foreign}
	for fi := range 2 {
		st.lists[fi] = map[string]*glist{}
		for _, ml := range m.lists[fi] {
			st.lists[fi][ml.name] = &glist{name: ml.name, key: ml.key, gen: ml.gen, known: ml}
		}
	}
	return st
}

// A countCheck is one count query and the answer a router in the
// remembered state gives.
type countCheck struct {
	words []string
	want  int
}

// checks lists the count queries that confirm the memo: per family, the
// number of tagged entries in any list (a generation we do not know of, a
// list emptied by a reboot, entries added or removed by hand); per list,
// the number of enabled tagged entries (also an entry disabled by hand),
// the newest entry of each list by id, list and address (ids unchanged:
// no reboot renumbered them), and each hand entry standing for a wanted
// address, by id, list and address, still enabled.
// With lists false, only the totals: after a sync, which counted every
// list it loaded before any rule used it.
func (m *memo) checks(tag string, lists bool) []countCheck {
	var cs []countCheck
	for fi := range 2 {
		mn := menu(fi) + "/address-list/print"
		cs = append(cs, countCheck{[]string{mn, "=count-only=", "?comment=" + tag}, m.total[fi]})
		for _, ml := range m.lists[fi] {
			if !lists {
				break
			}
			cs = append(cs, countCheck{[]string{mn, "=count-only=", "?list=" + ml.name, "?comment=" + tag, "?disabled=false"}, ml.tagged()})
			if ml.top != 0 {
				// Ids are compacted on reboot: if the newest entry kept
				// its id, so did every older one.
				c := countCheck{[]string{mn, "=count-only=", "?.id=" + fmtID(ml.top), "?list=" + ml.name}, 1}
				if ml.topAddr != "" {
					c.words = append(c.words, "?address="+ml.topAddr)
				}
				cs = append(cs, c)
			}
			for _, id := range slices.Sorted(maps.Keys(ml.hand)) {
				cs = append(cs, countCheck{[]string{mn, "=count-only=", "?.id=" + fmtID(id), "?list=" + ml.name, "?address=" + ml.hand[id], "?disabled=false"}, 1})
			}
		}
	}
	return cs
}

// runChecks sends the count queries in one pipeline, with the extra
// queries (such as ruleQueries), and describes the first mismatch ("" if
// none).
func (s *syncer) runChecks(cs []countCheck, extra ...query) (string, error) {
	got := make([]string, len(cs))
	qs := make([]query, 0, len(cs)+len(extra))
	for i, c := range cs {
		qs = append(qs, query{words: c.words, done: func(r *result) error {
			got[i] = r.done.Map["ret"]
			return nil
		}})
	}
	if err := s.c.batch(append(qs, extra...), s.cfg.Window); err != nil {
		return "", err
	}
	for i, c := range cs {
		if got[i] != strconv.Itoa(c.want) {
			return fmt.Sprintf("%v counts %s, want %d", c.words[2:], got[i], c.want), nil
		}
	}
	return "", nil
}

// remember builds the memo of the state a completed sync left: the target
// of every plan set, the kept standby generations, and the tagged entries
// of lists not ours. It returns nil if anything is unknown (an id never
// learnt because an add met an entry already there, a standby whose
// entries no set reproduces).
func (s *syncer) remember(st *state, w *work) *memo {
	m := &memo{addr: s.cfg.Addr, names: s.cfg.Names, foreign: st.foreign}
	for _, lp := range w.lists {
		if slices.Contains(lp.ids, 0) || len(lp.ids) != lp.want.n {
			return nil
		}
		ml := &mlist{name: lp.name, key: lp.want.key, set: lp.want.set, ids: lp.ids, hand: lp.hand}
		_, ml.gen, _ = s.cfg.parseList(lp.name)
		ml.setTop()
		m.lists[lp.fi] = append(m.lists[lp.fi], ml)
	}
	for fi := range 2 {
		for name := range w.kept[fi] {
			g := st.lists[fi][name]
			ml := g.known
			if ml == nil {
				ml = asMemo(g)
			}
			if ml == nil {
				return nil
			}
			m.lists[fi] = append(m.lists[fi], ml)
		}
		slices.SortFunc(m.lists[fi], func(a, b *mlist) int { return strings.Compare(a.name, b.name) })
		m.total[fi] = m.foreign[fi]
		for _, ml := range m.lists[fi] {
			m.total[fi] += ml.tagged()
		}
	}
	return m
}

// asMemo remembers a generation read from the router if its entries are
// exactly the entries of some set (sorted, no duplicates, no junk, nothing
// a set would merge), else nil.
func asMemo(g *glist) *mlist {
	if len(g.junk) > 0 {
		return nil
	}
	var b cidr.Builder
	for _, e := range g.entries {
		b.AddRange(e.r)
	}
	set, err := b.Set()
	if err != nil {
		return nil
	}
	set = familySet(set, g.key.fam)
	ids := make([]uint64, 0, len(g.entries))
	i := 0
	for r := range allEntries(set, g.key.fam) {
		if i >= len(g.entries) || g.entries[i].r != r {
			return nil
		}
		ids = append(ids, g.entries[i].id)
		i++
	}
	if i != len(g.entries) {
		return nil
	}
	ml := &mlist{name: g.name, key: g.key, gen: g.gen, set: set, ids: ids}
	ml.setTop()
	return ml
}
