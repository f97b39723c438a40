package routeros

import (
	"fmt"
	"slices"
	"strings"
)

// ruleExec carries out (or, dry, pretends to) the rule commands.
type ruleExec interface {
	add(fields []field, before uint64) (uint64, error) // before 0: append
	set(ids []uint64, args []string) error
	move(id, before uint64) error
	remove(ids []uint64) error
}

// rulePhase brings the managed NAT rules of one family to the plan: adds
// missing rules where they belong (place-before the next plan rule), sets
// changed ones (one command per distinct change, so rules repointed to a
// new list generation switch together), moves rules into plan order and
// removes managed rules the plan dropped. Rules not ours keep their place.
// It returns the number of rule commands.
func (s *syncer) rulePhase(fi int, current []*rrule, targets map[listKey]string, ex ruleExec) (int, error) {
	want := s.d.rules[fi]
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.name] = true
	}
	model := slices.Clone(current)
	byName := map[string]*rrule{}
	var extra []uint64
	for _, r := range model {
		if r.name == "" {
			continue
		}
		if wanted[r.name] && byName[r.name] == nil {
			byName[r.name] = r
		} else {
			extra = append(extra, r.id)
		}
	}
	kept := func(r *rrule) bool { return r.name != "" && byName[r.name] == r }
	ops := 0
	added := map[string]bool{}
	fieldsOf := func(w *drule) []field { return w.allFields(targets[w.list]) }

	for i := len(want) - 1; i >= 0; i-- {
		w := &want[i]
		if byName[w.name] != nil {
			continue
		}
		at := len(model)
		if i+1 < len(want) {
			at = slices.Index(model, byName[want[i+1].name])
		} else {
			for j := len(model) - 1; j >= 0; j-- {
				if kept(model[j]) {
					at = j + 1 // after the last rule of ours
					break
				}
			}
		}
		var before uint64
		if at < len(model) {
			before = model[at].id
		}
		fs := fieldsOf(w)
		id, err := ex.add(fs, before)
		if err != nil {
			return ops, fmt.Errorf("rule %s: %w", w.name, err)
		}
		ops++
		r := &rrule{id: id, name: w.name, props: map[string]string{}}
		for _, f := range fs {
			r.props[f.k] = f.v
		}
		model = slices.Insert(model, at, r)
		byName[w.name] = r
		added[w.name] = true
	}

	type group struct {
		args  []string
		ids   []uint64
		names []string
	}
	var groups []*group
	for i := range want {
		w := &want[i]
		if added[w.name] {
			continue
		}
		r := byName[w.name]
		args := changeArgs(r.props, fieldsOf(w))
		if len(args) == 0 {
			continue
		}
		key := strings.Join(args, "\x00")
		j := slices.IndexFunc(groups, func(g *group) bool { return strings.Join(g.args, "\x00") == key })
		if j < 0 {
			groups = append(groups, &group{args: args})
			j = len(groups) - 1
		}
		groups[j].ids = append(groups[j].ids, r.id)
		groups[j].names = append(groups[j].names, w.name)
	}
	for _, g := range groups {
		if err := ex.set(g.ids, g.args); err != nil {
			return ops, fmt.Errorf("rules %s: %w", strings.Join(g.names, ","), err)
		}
		ops += len(g.ids)
	}

	for i := len(want) - 2; i >= 0; i-- {
		a, b := byName[want[i].name], byName[want[i+1].name]
		ia := slices.Index(model, a)
		next := slices.IndexFunc(model[ia+1:], kept)
		if next >= 0 && model[ia+1+next] == b {
			continue
		}
		if err := ex.move(a.id, b.id); err != nil {
			return ops, fmt.Errorf("rule %s: move: %w", want[i].name, err)
		}
		ops++
		model = slices.Delete(model, ia, ia+1)
		model = slices.Insert(model, slices.Index(model, b), a)
	}

	if len(extra) > 0 {
		for ids := range slices.Chunk(extra, s.cfg.RemoveBatch) {
			if err := ex.remove(ids); err != nil {
				return ops, fmt.Errorf("rules: remove: %w", err)
			}
		}
		ops += len(extra)
	}
	return ops, nil
}

// changeArgs returns the set arguments turning a rule's properties into
// the wanted fields: changed values, unset matchers the plan does not
// give, and enabling a disabled rule.
func changeArgs(props map[string]string, fs []field) []string {
	var args []string
	has := map[string]bool{}
	for _, f := range fs {
		has[f.k] = true
		cur, ok := props[f.k]
		if ok && (cur == f.v || isAddrField(f.k) && sameAddress(cur, f.v)) {
			continue
		}
		args = append(args, "="+f.k+"="+f.v)
	}
	for _, k := range matcherFields {
		if !has[k] && props[k] != "" {
			args = append(args, "=!"+k+"=")
		}
	}
	if props["disabled"] == "true" {
		args = append(args, "=disabled=no")
	}
	return args
}

func isAddrField(k string) bool {
	return k == "src-address" || k == "dst-address" || k == "to-addresses"
}

// dryExec records what would be done, with made-up ids for new rules.
type dryExec struct {
	fi    int
	lines *[]string
	next  uint64
	names map[uint64]string
}

const dryIDs = 1 << 62

func (d *dryExec) id(id uint64) string {
	if id > dryIDs {
		return "the new " + d.names[id]
	}
	return fmtID(id)
}

func (d *dryExec) ids(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = d.id(id)
	}
	return strings.Join(s, ",")
}

func (d *dryExec) fam() string { return []string{"ip", "ipv6"}[d.fi] }

func (d *dryExec) add(fs []field, before uint64) (uint64, error) {
	d.next++
	where := "at the end"
	if before != 0 {
		where = "before " + d.id(before)
	}
	*d.lines = append(*d.lines, fmt.Sprintf("%s nat: add %q %s", d.fam(), commentOf(fs), where))
	if d.names == nil {
		d.names = map[uint64]string{}
	}
	d.names[dryIDs+d.next] = fmt.Sprintf("%q", commentOf(fs))
	return dryIDs + d.next, nil
}

func (d *dryExec) set(ids []uint64, args []string) error {
	*d.lines = append(*d.lines, fmt.Sprintf("%s nat: set %s %s", d.fam(), d.ids(ids), strings.Join(args, " ")))
	return nil
}

func (d *dryExec) move(id, before uint64) error {
	*d.lines = append(*d.lines, fmt.Sprintf("%s nat: move %s before %s", d.fam(), d.id(id), d.id(before)))
	return nil
}

func (d *dryExec) remove(ids []uint64) error {
	*d.lines = append(*d.lines, fmt.Sprintf("%s nat: remove %s", d.fam(), d.ids(ids)))
	return nil
}

func commentOf(fs []field) string {
	for _, f := range fs {
		if f.k == "comment" {
			return f.v
		}
	}
	return ""
}

// realExec sends the rule commands one at a time: rules are few, and each
// add needs the id of the one before.
type realExec struct {
	s  *syncer
	fi int
}

func (e *realExec) do(words ...string) (*result, error) {
	r, err := e.s.c.run(words...)
	if err != nil {
		return nil, err
	}
	e.s.step(1)
	return r, r.trapErr(words)
}

func (e *realExec) add(fs []field, before uint64) (uint64, error) {
	words := []string{menu(e.fi) + "/nat/add"}
	for _, f := range fs {
		words = append(words, "="+f.k+"="+f.v)
	}
	if before != 0 {
		words = append(words, "=place-before="+fmtID(before))
	}
	r, err := e.do(words...)
	if err != nil {
		return 0, err
	}
	id, ok := parseID(r.done.Map["ret"])
	if !ok {
		return 0, fmt.Errorf("add: no id in reply")
	}
	return id, nil
}

func (e *realExec) set(ids []uint64, args []string) error {
	_, err := e.do(append([]string{menu(e.fi) + "/nat/set", "=.id=" + joinIDs(ids)}, args...)...)
	return err
}

func (e *realExec) move(id, before uint64) error {
	_, err := e.do(menu(e.fi)+"/nat/move", "=numbers="+fmtID(id), "=destination="+fmtID(before))
	return err
}

func (e *realExec) remove(ids []uint64) error {
	_, err := e.do(menu(e.fi)+"/nat/remove", "=.id="+joinIDs(ids))
	return err
}
