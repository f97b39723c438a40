package routeros

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geosteer/geosteer/backend"
	"go4.org/netipx"
)

// syncer runs one Apply on one connection.
type syncer struct {
	cfg      *Router
	c        *conn
	d        *desired
	report   backend.Report
	progress func(done, total int)

	pmu         sync.Mutex
	done, total int
}

// A listPlan is the work on one list generation: the target of a plan set.
type listPlan struct {
	fi      int
	want    *dlist
	name    string
	adds    []netipx.IPRange
	removes []uint64
	inPlace bool // the target is referenced: add before removing
	from    string
}

// garbage is a generation to remove once no rule references it.
type garbage struct {
	fi   int
	name string
	ids  []uint64
}

// work is everything a sync would do to a state.
type work struct {
	lists   []*listPlan
	targets map[listKey]string
	garbage []garbage
	rules   int // rule commands (dry count)
	lines   []string
}

func (w *work) empty() bool {
	if len(w.garbage) > 0 || w.rules > 0 {
		return false
	}
	for _, l := range w.lists {
		if len(l.adds)+len(l.removes) > 0 {
			return false
		}
	}
	return true
}

func (s *syncer) step(n int) {
	if s.progress == nil {
		return
	}
	s.pmu.Lock()
	s.done += n
	d, t := s.done, s.total
	s.pmu.Unlock()
	s.progress(d, t)
}

func (s *syncer) run(ctx context.Context, dry bool) error {
	st, err := readState(s.c, s.cfg.Names)
	if err != nil {
		return err
	}
	w, err := s.plan(st)
	if err != nil {
		return err
	}
	s.report.Changes = w.lines
	for _, l := range w.lists {
		s.report.ElementsAdded += len(l.adds)
		s.report.ElementsRemoved += len(l.removes)
	}
	for _, g := range w.garbage {
		s.report.ElementsRemoved += len(g.ids)
	}
	s.report.RulesChanged = w.rules
	if dry || w.empty() {
		return nil
	}
	s.total = w.rules
	for _, l := range w.lists {
		s.total += len(l.adds) + s.batches(len(l.removes))
	}
	for _, g := range w.garbage {
		s.total += s.batches(len(g.ids))
	}

	if err := s.loadLists(w.lists); err != nil {
		return err
	}
	if err := s.checkLoaded(w.lists); err != nil {
		return err
	}
	for fi := range 2 {
		if _, err := s.rulePhase(fi, st.rules[fi], w.targets, &realExec{s: s, fi: fi}); err != nil {
			return err
		}
	}
	if err := s.removeGarbage(w.garbage); err != nil {
		return err
	}
	if s.cfg.NoVerify {
		return nil
	}
	// Read everything back: a converged router needs no work.
	st, err = readState(s.c, s.cfg.Names)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if w, err = s.plan(st); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if !w.empty() {
		return fmt.Errorf("verify: the router still differs from the plan: %s", strings.Join(w.lines, "; "))
	}
	return ctx.Err()
}

func (s *syncer) batches(n int) int { return (n + s.cfg.RemoveBatch - 1) / s.cfg.RemoveBatch }

// plan computes the work for a state without changing anything.
func (s *syncer) plan(st *state) (*work, error) {
	w := &work{targets: map[listKey]string{}}
	n := s.cfg.Names
	var refd [2]map[string]bool
	for fi := range 2 {
		refd[fi] = map[string]bool{}
		for _, r := range st.rules[fi] {
			if r.name != "" {
				if l := strings.TrimPrefix(r.props["src-address-list"], "!"); l != "" {
					refd[fi][l] = true
				}
			}
		}
	}
	keep := map[string]bool{}
	for i := range s.d.lists {
		dl := &s.d.lists[i]
		fi := famIndex(dl.key.fam)
		var gens, refs, free []*glist
		for _, g := range st.lists[fi] {
			if g.key == dl.key {
				gens = append(gens, g)
			}
		}
		slices.SortFunc(gens, func(a, b *glist) int { return strings.Compare(a.name, b.name) })
		for _, g := range gens {
			if refd[fi][g.name] {
				refs = append(refs, g)
			} else {
				free = append(free, g)
			}
		}
		cost := func(g *glist) int { return diffSize(g.entries, dl.entries) + len(g.junk) }
		best := func(gs []*glist) *glist {
			var b *glist
			for _, g := range gs {
				if b == nil || cost(g) < cost(b) {
					b = g
				}
			}
			return b
		}
		var target *glist
		inPlace := false
		switch {
		case len(refs) == 1 && cost(refs[0]) == 0:
			target = refs[0]
		case best(gens) != nil && cost(best(gens)) == 0:
			target = best(gens)
		case s.cfg.Mode == InPlace && len(refs) == 1:
			target, inPlace = refs[0], true
		default:
			target = best(free)
		}
		lp := &listPlan{fi: fi, want: dl, inPlace: inPlace}
		if target == nil {
			next := 1
			for _, g := range gens {
				if v, err := strconv.Atoi(g.gen); err == nil && v >= next {
					next = v + 1
				}
			}
			lp.name = n.list(dl.key, strconv.Itoa(next))
			lp.adds = dl.entries
		} else {
			lp.name = target.name
			lp.adds, lp.removes = diff(target.entries, dl.entries)
			lp.removes = append(lp.removes, target.junk...)
		}
		if len(refs) > 0 && (len(refs) > 1 || refs[0].name != lp.name) {
			lp.from = refs[0].name
		}
		w.targets[dl.key] = lp.name
		w.lists = append(w.lists, lp)
		if s.cfg.Mode == Standby {
			// Keep the generation being replaced (or the best spare) to
			// diff against next time.
			var others []*glist
			for _, g := range refs {
				if g.name != lp.name {
					others = append(others, g)
				}
			}
			if len(others) == 0 {
				for _, g := range free {
					if g.name != lp.name {
						others = append(others, g)
					}
				}
			}
			if b := best(others); b != nil {
				keep[b.name] = true
				if lp.from != "" {
					w.lines = append(w.lines, fmt.Sprintf("list %s: kept as standby", b.name))
				}
			}
		}
		switch {
		case len(lp.adds)+len(lp.removes) == 0 && lp.from == "":
		case lp.inPlace:
			w.lines = append(w.lines, fmt.Sprintf("list %s: +%d -%d in place", lp.name, len(lp.adds), len(lp.removes)))
		case lp.from != "":
			w.lines = append(w.lines, fmt.Sprintf("list %s: +%d -%d, then rules switch from %s", lp.name, len(lp.adds), len(lp.removes), lp.from))
		default:
			w.lines = append(w.lines, fmt.Sprintf("list %s: +%d -%d", lp.name, len(lp.adds), len(lp.removes)))
		}
	}
	targets := map[string]bool{}
	for _, name := range w.targets {
		targets[name] = true
	}
	for fi := range 2 {
		for _, name := range slices.Sorted(maps.Keys(st.lists[fi])) {
			g := st.lists[fi][name]
			if targets[name] || keep[name] {
				continue
			}
			ids := make([]uint64, 0, len(g.entries)+len(g.junk))
			for _, e := range g.entries {
				ids = append(ids, e.id)
			}
			ids = append(ids, g.junk...)
			w.garbage = append(w.garbage, garbage{fi, name, ids})
			w.lines = append(w.lines, fmt.Sprintf("list %s: remove %d entries once no rule uses it", name, len(ids)))
		}
	}
	for fi := range 2 {
		ex := &dryExec{fi: fi, lines: &w.lines}
		n, err := s.rulePhase(fi, st.rules[fi], w.targets, ex)
		if err != nil {
			return nil, err
		}
		w.rules += n
	}
	return w, nil
}

// loadLists sends every list change in one pipeline. Per list, entries are
// removed before adding into a list no rule uses (less memory at the peak),
// and added before removing from a referenced one (InPlace).
func (s *syncer) loadLists(lists []*listPlan) error {
	type cmd struct {
		lp     *listPlan
		add    netipx.IPRange
		remove []uint64
	}
	var cmds []cmd
	for _, lp := range lists {
		var rm []cmd
		for ids := range slices.Chunk(lp.removes, s.cfg.RemoveBatch) {
			rm = append(rm, cmd{lp: lp, remove: ids})
		}
		if !lp.inPlace {
			cmds = append(cmds, rm...)
		}
		for _, r := range lp.adds {
			cmds = append(cmds, cmd{lp: lp, add: r})
		}
		if lp.inPlace {
			cmds = append(cmds, rm...)
		}
	}
	timeout := ""
	if s.cfg.Timeout > 0 {
		timeout = "=timeout=" + fmtDuration(s.cfg.Timeout)
	}
	comment := "=comment=" + s.cfg.Tag
	return s.c.pipeline(len(cmds), s.cfg.Window, func(i int) []string {
		c := cmds[i]
		m := menu(c.lp.fi) + "/address-list/"
		if c.remove != nil {
			return []string{m + "remove", "=.id=" + joinIDs(c.remove)}
		}
		words := []string{m + "add", "=list=" + c.lp.name, "=address=" + entryAddress(c.add), comment}
		if timeout != "" {
			words = append(words, timeout)
		}
		return words
	}, func(i int, r *result) error {
		s.step(1)
		c := cmds[i]
		for _, t := range r.traps {
			if c.remove == nil && strings.Contains(t, "already have such entry") {
				continue // present already (checked by the count below)
			}
			if c.remove != nil {
				return fmt.Errorf("list %s: remove: %s", c.lp.name, t)
			}
			return fmt.Errorf("list %s: add %s: %s", c.lp.name, entryAddress(c.add), t)
		}
		return nil
	})
}

// checkLoaded counts the managed entries of each list that changed, so no
// rule is pointed at a list missing anything.
func (s *syncer) checkLoaded(lists []*listPlan) error {
	for _, lp := range lists {
		if len(lp.adds)+len(lp.removes) == 0 {
			continue
		}
		words := []string{menu(lp.fi) + "/address-list/print", "=count-only=", "?list=" + lp.name, "?comment=" + s.cfg.Tag}
		r, err := s.c.run(words...)
		if err != nil {
			return err
		}
		if err := r.trapErr(words); err != nil {
			return err
		}
		if got := r.done.Map["ret"]; got != strconv.Itoa(len(lp.want.entries)) {
			return fmt.Errorf("list %s holds %s managed entries after loading, want %d: rules not switched", lp.name, got, len(lp.want.entries))
		}
	}
	return nil
}

func (s *syncer) removeGarbage(gs []garbage) error {
	type cmd struct {
		fi   int
		name string
		ids  []uint64
	}
	var cmds []cmd
	for _, g := range gs {
		for ids := range slices.Chunk(g.ids, s.cfg.RemoveBatch) {
			cmds = append(cmds, cmd{g.fi, g.name, ids})
		}
	}
	return s.c.pipeline(len(cmds), s.cfg.Window, func(i int) []string {
		return []string{menu(cmds[i].fi) + "/address-list/remove", "=.id=" + joinIDs(cmds[i].ids)}
	}, func(i int, r *result) error {
		s.step(1)
		if len(r.traps) > 0 {
			return fmt.Errorf("list %s: remove: %s", cmds[i].name, r.traps[0])
		}
		return nil
	})
}

// fmtDuration formats d as a RouterOS time value, such as 1d2h3m4s.
func fmtDuration(d time.Duration) string {
	var b strings.Builder
	s := int64(d.Round(time.Second) / time.Second)
	if s == 0 {
		s = 1
	}
	for _, u := range []struct {
		n int64
		c byte
	}{{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}} {
		if s >= u.n {
			b.WriteString(strconv.FormatInt(s/u.n, 10))
			b.WriteByte(u.c)
			s %= u.n
		}
	}
	return b.String()
}
