package routeros

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/go-routeros/routeros/v3/proto"
	"go4.org/netipx"
)

// syncer runs one Apply on one connection.
type syncer struct {
	cfg      *config
	c        *conn
	d        *desired
	report   backend.Report
	progress func(done, total int)

	read string // how the state was learnt: "memo" or "full"
	mark time.Time

	pmu         sync.Mutex
	done, total int
}

// A listPlan is the work on one list generation: the target of a plan set.
type listPlan struct {
	fi      int
	want    *dlist
	name    string
	adds    []addition // unless addAll
	addAll  bool       // a new generation: every wanted entry, not materialised
	removes []uint64
	junk    []uint64 // disabled or unreadable entries of ours: removed first
	// ids[j] is the id of wanted entry j: known from the state, or
	// learnt from the reply to its add (0 until then).
	ids []uint64
	// hand holds the ids among ids of entries not ours that hold exactly
	// a wanted address (the technician's), with that address.
	hand    map[uint64]string
	inPlace bool // the target is referenced: add before removing
	from    string
}

// An addition is wanted entry j, missing.
type addition struct {
	j int
	r netipx.IPRange
}

func (lp *listPlan) numRemoves() int { return len(lp.junk) + len(lp.removes) }

func (lp *listPlan) numAdds() int {
	if lp.addAll {
		return lp.want.n
	}
	return len(lp.adds)
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
	kept    [2]map[string]bool // standby generations kept, per family
	rules   int                // rule commands (dry count)
	lines   []string
}

func (w *work) empty() bool {
	if len(w.garbage) > 0 || w.rules > 0 {
		return false
	}
	for _, l := range w.lists {
		if l.numAdds()+l.numRemoves() > 0 {
			return false
		}
	}
	return true
}

// phase logs, at debug level, how long the work since the last mark took.
func (s *syncer) phase(name string) {
	now := time.Now()
	if !s.mark.IsZero() {
		s.cfg.Logger.Debug("routeros sync phase", "router", s.cfg.Addr, "phase", name, "elapsed", now.Sub(s.mark))
	}
	s.mark = now
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

// run syncs, starting from the memo m if the router confirms it, and
// returns the memo of the state it left (nil if unknown).
func (s *syncer) run(ctx context.Context, dry bool, m *memo) (*memo, error) {
	s.phase("")
	st, err := s.start(m)
	if err != nil {
		return nil, err
	}
	s.phase("state (" + s.read + ")")
	w, err := s.plan(st)
	if err != nil {
		return nil, err
	}
	s.phase("diff")
	s.report.Changes = w.lines
	for _, l := range w.lists {
		s.report.ElementsAdded += l.numAdds()
		s.report.ElementsRemoved += l.numRemoves()
	}
	for _, g := range w.garbage {
		s.report.ElementsRemoved += len(g.ids)
	}
	s.report.RulesChanged = w.rules
	if w.empty() {
		return s.remember(st, w), nil
	}
	if dry {
		if st.memo {
			return m, nil // confirmed and unchanged
		}
		return nil, nil
	}
	s.total = w.rules
	for _, l := range w.lists {
		s.total += l.numAdds() + s.batches(len(l.junk)) + s.batches(len(l.removes))
	}
	for _, g := range w.garbage {
		s.total += s.batches(len(g.ids))
	}

	if err := s.loadLists(w.lists); err != nil {
		return nil, err
	}
	s.phase("load")
	if err := s.checkLoaded(w.lists); err != nil {
		return nil, err
	}
	s.phase("count loaded")
	for fi := range 2 {
		if _, err := s.rulePhase(fi, st.rules[fi], w.targets, &realExec{s: s, fi: fi}); err != nil {
			return nil, err
		}
	}
	s.phase("rules")
	if err := s.removeGarbage(w.garbage); err != nil {
		return nil, err
	}
	s.phase("remove old generations")
	next := s.remember(st, w)
	defer s.phase("verify (" + s.cfg.Verify.String() + ")")
	switch {
	case s.cfg.Verify == VerifyNone:
	case s.cfg.Verify == VerifyCounts && next != nil:
		if err := s.verifyCounts(next, len(w.garbage) > 0); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	default:
		if err := s.verifyFull(); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	return next, ctx.Err()
}

// start returns the state to diff against: the memo if the router's
// counts confirm it (and the rules, read in full: they are few), else
// everything read back.
func (s *syncer) start(m *memo) (*state, error) {
	if m != nil && s.cfg.Verify != VerifyFull && m.addr == s.cfg.Addr && m.names == s.cfg.Names {
		st := m.state()
		why, err := s.runChecks(m.checks(s.cfg.Tag, true), ruleQueries(s.cfg.Names, st)...)
		if err != nil {
			return nil, err
		}
		if why == "" {
			s.read = "memo"
			return st, nil
		}
		s.cfg.Logger.Info("routeros: the router changed since the last sync; reading it in full", "router", s.cfg.Addr, "why", why)
	}
	s.read = "full"
	return readState(s.c, s.cfg.Names)
}

// verifyCounts confirms the state the sync left: the rules read back and,
// if whole generations were removed, the tagged entries per family. The
// lists just loaded were counted already, before any rule used them, and
// the others were confirmed or read at the start.
func (s *syncer) verifyCounts(m *memo, removedLists bool) error {
	var cs []countCheck
	if removedLists {
		cs = m.checks(s.cfg.Tag, false)
	}
	st := m.state()
	why, err := s.runChecks(cs, ruleQueries(s.cfg.Names, st)...)
	if err != nil {
		return err
	}
	if why != "" {
		return fmt.Errorf("the router does not hold what was sent: %s", why)
	}
	w, err := s.plan(st)
	if err != nil {
		return err
	}
	if !w.empty() {
		return fmt.Errorf("the router still differs from the plan: %s", strings.Join(w.lines, "; "))
	}
	return nil
}

// verifyFull reads everything back: a converged router needs no work.
func (s *syncer) verifyFull() error {
	st, err := readState(s.c, s.cfg.Names)
	if err != nil {
		return err
	}
	w, err := s.plan(st)
	if err != nil {
		return err
	}
	if !w.empty() {
		return fmt.Errorf("the router still differs from the plan: %s", strings.Join(w.lines, "; "))
	}
	return nil
}

func (s *syncer) batches(n int) int { return (n + s.cfg.RemoveBatch - 1) / s.cfg.RemoveBatch }

// plan computes the work for a state without changing anything.
func (s *syncer) plan(st *state) (*work, error) {
	w := &work{targets: map[listKey]string{}}
	w.kept[0], w.kept[1] = map[string]bool{}, map[string]bool{}
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
	// Each candidate generation is diffed once; the target's diff is the
	// one sent.
	diffs := map[*glist]*gdiff{}
	cost := func(g *glist, dl *dlist) int {
		d, ok := diffs[g]
		if !ok {
			d = diffOf(g, dl)
			diffs[g] = d
		}
		return d.cost
	}
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
		clear(diffs) // per wanted list
		best := func(gs []*glist) *glist {
			var b *glist
			for _, g := range gs {
				if b == nil || cost(g, dl) < cost(b, dl) {
					b = g
				}
			}
			return b
		}
		var target *glist
		inPlace := false
		switch {
		case len(refs) == 1 && cost(refs[0], dl) == 0:
			target = refs[0]
		case best(gens) != nil && cost(best(gens), dl) == 0:
			target = best(gens)
		case s.cfg.Mode == InPlace && len(refs) == 1:
			target, inPlace = refs[0], true
		default:
			target = best(free)
		}
		lp := &listPlan{fi: fi, want: dl, inPlace: inPlace}
		if target == nil {
			lp.ids = make([]uint64, dl.n)
			next := 1
			for _, g := range gens {
				if v, err := strconv.Atoi(g.gen); err == nil && v >= next {
					next = v + 1
				}
			}
			lp.name = n.list(dl.key, strconv.Itoa(next))
			lp.addAll = true
		} else {
			lp.name = target.name
			cost(target, dl)
			d := diffs[target]
			lp.ids, lp.hand, lp.adds, lp.removes, lp.junk = d.ids, maps.Clone(d.hand), d.adds, d.removes, target.junk
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
				w.kept[fi][b.name] = true
				if lp.from != "" {
					w.lines = append(w.lines, fmt.Sprintf("list %s: kept as standby", b.name))
				}
			}
		}
		switch {
		case lp.numAdds()+lp.numRemoves() == 0 && lp.from == "":
		case lp.inPlace:
			w.lines = append(w.lines, fmt.Sprintf("list %s: +%d -%d in place", lp.name, lp.numAdds(), lp.numRemoves()))
		case lp.from != "":
			w.lines = append(w.lines, fmt.Sprintf("list %s: +%d -%d, then rules switch from %s", lp.name, lp.numAdds(), lp.numRemoves(), lp.from))
		default:
			w.lines = append(w.lines, fmt.Sprintf("list %s: +%d -%d", lp.name, lp.numAdds(), lp.numRemoves()))
		}
	}
	targets := map[string]bool{}
	for _, name := range w.targets {
		targets[name] = true
	}
	for fi := range 2 {
		for _, name := range slices.Sorted(maps.Keys(st.lists[fi])) {
			g := st.lists[fi][name]
			if targets[name] || w.kept[fi][name] {
				continue
			}
			ids := g.ids()
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

// loadLists sends every list change in one pipeline, generating the
// commands as it goes. Per list, entries are removed before adding into a
// list no rule uses (less memory at the peak), and added before removing
// from a referenced one (InPlace). The id each add returns is recorded in
// the list plan.
func (s *syncer) loadLists(lists []*listPlan) error {
	// A segment is a run of commands of one kind on one list.
	// Junk goes first in every mode: a disabled entry of ours matches no
	// traffic, and while it is there an add of its address would trap.
	type segment struct {
		lp         *listPlan
		remove     []uint64 // ids to remove, or nil for adds
		start, end int      // command indexes
	}
	var segs []segment
	var dups []addition // adds that met an entry there already
	dupOf := map[int]*listPlan{}
	n := 0
	push := func(lp *listPlan, remove []uint64, k int) {
		if k > 0 {
			segs = append(segs, segment{lp, remove, n, n + k})
			n += k
		}
	}
	for _, lp := range lists {
		push(lp, lp.junk, s.batches(len(lp.junk)))
		if !lp.inPlace {
			push(lp, lp.removes, s.batches(len(lp.removes)))
		}
		push(lp, nil, lp.numAdds())
		if lp.inPlace {
			push(lp, lp.removes, s.batches(len(lp.removes)))
		}
	}
	segOf := func(i int) *segment {
		k, _ := slices.BinarySearchFunc(segs, i, func(sg segment, i int) int {
			switch {
			case sg.end <= i:
				return -1
			case sg.start > i:
				return 1
			}
			return 0
		})
		return &segs[k]
	}
	tail := []string{"=comment=" + s.cfg.Tag}
	if s.cfg.Timeout > 0 {
		tail = append(tail, "=timeout="+fmtDuration(s.cfg.Timeout))
	}
	// The wanted entries of an addAll segment, pulled as commands are made.
	var (
		pullSeg = -1
		next    func() (netipx.IPRange, bool)
		stop    = func() {}
	)
	defer func() { stop() }()
	err := s.c.pipeline(n, s.cfg.Window, func(i int) []string {
		sg := segOf(i)
		lp, k := sg.lp, i-sg.start
		m := menu(lp.fi) + "/address-list/"
		if sg.remove != nil {
			b := s.cfg.RemoveBatch
			return []string{m + "remove", "=.id=" + joinIDs(sg.remove[k*b:min((k+1)*b, len(sg.remove))])}
		}
		var r netipx.IPRange
		if lp.addAll {
			if pullSeg != sg.start {
				stop()
				next, stop = iter.Pull(lp.want.all())
				pullSeg = sg.start
			}
			r, _ = next()
		} else {
			r = lp.adds[k].r
		}
		return append([]string{m + "add", "=list=" + lp.name, "=address=" + entryAddress(r)}, tail...)
	}, func(i int, words []string, r *result) error {
		s.step(1)
		sg := segOf(i)
		lp, k := sg.lp, i-sg.start
		for _, t := range r.traps {
			switch {
			case sg.remove != nil:
				return fmt.Errorf("list %s: remove: %s", lp.name, t)
			case strings.Contains(t, "already have such entry"):
				// Present already: found below.
			default:
				return fmt.Errorf("list %s: add %s: %s", lp.name, strings.TrimPrefix(words[2], "=address="), t)
			}
		}
		if sg.remove != nil {
			return nil
		}
		j := k
		if !lp.addAll {
			j = lp.adds[k].j
		}
		if len(r.traps) > 0 {
			a, _ := parseEntry(strings.TrimPrefix(words[2], "=address="))
			dupOf[len(dups)] = lp
			dups = append(dups, addition{j, a})
			return nil
		}
		if id, ok := parseID(r.done.Map["ret"]); ok {
			lp.ids[j] = id
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.findPresent(dups, dupOf)
}

// findPresent looks up the entries that made adds trap as duplicates: one
// of ours (another sync's, say) is simply ours; an enabled entry not ours
// (a technician's) stands for the wanted address, is remembered as such
// and never removed; a disabled one routes nothing and is not ours to
// enable, so the sync stops before any rule uses the list. An entry not
// found leaves the id unknown and the count in checkLoaded decides.
func (s *syncer) findPresent(dups []addition, lpOf map[int]*listPlan) error {
	qs := make([]query, len(dups))
	for i, a := range dups {
		lp := lpOf[i]
		type row struct {
			id       uint64
			ours, on bool
		}
		var rows []row
		addr := entryAddress(a.r)
		qs[i] = query{
			words: []string{menu(lp.fi) + "/address-list/print", "=.proplist=.id,comment,disabled", "?list=" + lp.name, "?address=" + addr},
			onRe: func(sn *proto.Sentence) {
				if id, ok := parseID(attr(sn, ".id")); ok {
					rows = append(rows, row{id, attr(sn, "comment") == s.cfg.Tag, attr(sn, "disabled") != "true"})
				}
			},
			done: func(*result) error {
				slices.SortStableFunc(rows, func(x, y row) int { // ours first, then enabled
					return cmp.Or(-cmpBool(x.ours, y.ours), -cmpBool(x.on, y.on))
				})
				switch {
				case len(rows) == 0:
				case !rows[0].on:
					return fmt.Errorf("list %s: %s is held by the disabled entry %s, not ours to enable or remove: the list would miss it; rules not switched", lp.name, addr, fmtID(rows[0].id))
				case rows[0].ours:
					lp.ids[a.j] = rows[0].id
					s.report.ElementsAdded--
				default:
					lp.ids[a.j] = rows[0].id
					if lp.hand == nil {
						lp.hand = map[uint64]string{}
					}
					lp.hand[rows[0].id] = addr
					s.report.ElementsAdded--
					s.cfg.Logger.Info("routeros: a hand-made entry stands for a wanted address", "router", s.cfg.Addr, "list", lp.name, "address", addr, "id", fmtID(rows[0].id))
				}
				return nil
			},
		}
	}
	return s.c.batch(qs, s.cfg.Window)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// checkLoaded counts the managed entries of each list that changed, so no
// rule is pointed at a list missing anything.
func (s *syncer) checkLoaded(lists []*listPlan) error {
	for _, lp := range lists {
		if lp.numAdds()+lp.numRemoves() == 0 {
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
		if want := lp.want.n - len(lp.hand); r.done.Map["ret"] != strconv.Itoa(want) {
			return fmt.Errorf("list %s holds %s managed entries after loading, want %d: rules not switched", lp.name, r.done.Map["ret"], want)
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
	}, func(i int, _ []string, r *result) error {
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
