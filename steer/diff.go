package steer

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

// A PlanDiff is what changes from one plan to the next: per set, the
// addresses and entries added and removed, and the rules added, removed,
// changed or reordered. Print it (String or WriteTo) before applying.
type PlanDiff struct {
	Sets  []SetDiff // sets that differ, in the new plan's order, then removed sets
	Rules RuleDiff
}

// A SetDiff is the change of one named set.
type SetDiff struct {
	Name           string
	New, Gone      bool     // the set appears, or disappears
	Added, Removed cidr.Set // addresses
	// EntriesAdded and EntriesRemoved count the prefixes of the minimal
	// CIDR lists that differ: the elements a prefix-list backend adds and
	// deletes.
	EntriesAdded, EntriesRemoved int
}

// A RuleDiff lists rule changes by rule name.
type RuleDiff struct {
	Added, Removed, Changed []string
	// Reordered is set when the rules common to both plans are in a
	// different order.
	Reordered bool
}

// Empty reports whether nothing changes.
func (d RuleDiff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 && !d.Reordered
}

// Diff compares two plans. old may be nil (nothing installed yet).
func Diff(old, new *Plan) PlanDiff {
	if old == nil {
		old = &Plan{}
	}
	var d PlanDiff
	for _, s := range new.Sets {
		o, ok := old.Set(s.Name)
		sd := SetDiff{Name: s.Name, New: !ok}
		sd.Added, sd.Removed = s.Addrs.Difference(o.Addrs), o.Addrs.Difference(s.Addrs)
		if sd.New || !sd.Added.IsEmpty() || !sd.Removed.IsEmpty() {
			sd.EntriesAdded, sd.EntriesRemoved = entryDiff(o.Addrs.Prefixes(), s.Addrs.Prefixes())
			d.Sets = append(d.Sets, sd)
		}
	}
	for _, o := range old.Sets {
		if _, ok := new.Set(o.Name); !ok {
			d.Sets = append(d.Sets, SetDiff{Name: o.Name, Gone: true, Removed: o.Addrs, EntriesRemoved: o.Addrs.NumPrefixes()})
		}
	}
	oldRules := map[string]Rule{}
	for _, r := range old.Rules {
		oldRules[r.Name] = r
	}
	newRules := map[string]bool{}
	var common []string
	for _, r := range new.Rules {
		newRules[r.Name] = true
		o, ok := oldRules[r.Name]
		switch {
		case !ok:
			d.Rules.Added = append(d.Rules.Added, r.Name)
		case o != r:
			d.Rules.Changed = append(d.Rules.Changed, r.Name)
			common = append(common, r.Name)
		default:
			common = append(common, r.Name)
		}
	}
	var oldCommon []string
	for _, r := range old.Rules {
		if !newRules[r.Name] {
			d.Rules.Removed = append(d.Rules.Removed, r.Name)
		} else {
			oldCommon = append(oldCommon, r.Name)
		}
	}
	d.Rules.Reordered = !slices.Equal(common, oldCommon)
	return d
}

// entryDiff counts the prefixes only in a and only in b (both sorted, as
// Set.Prefixes returns them).
func entryDiff(a, b []netip.Prefix) (added, removed int) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b):
			removed++
			i++
		case i == len(a):
			added++
			j++
		case a[i] == b[j]:
			i++
			j++
		case lessPrefix(a[i], b[j]):
			removed++
			i++
		default:
			added++
			j++
		}
	}
	return added, removed
}

// lessPrefix orders prefixes as Set.Prefixes lists them: IPv4 first, then
// by address (prefixes of a minimal list never share an address).
func lessPrefix(p, q netip.Prefix) bool {
	if p.Addr().Is4() != q.Addr().Is4() {
		return p.Addr().Is4()
	}
	if c := p.Addr().Compare(q.Addr()); c != 0 {
		return c < 0
	}
	return p.Bits() < q.Bits()
}

// Empty reports whether the plans are the same.
func (d PlanDiff) Empty() bool { return len(d.Sets) == 0 && d.Rules.Empty() }

// String summarises the diff on one line, such as
// "3 sets, +1,204 −88 entries, rules unchanged".
func (d PlanDiff) String() string {
	var add, rem int
	for _, s := range d.Sets {
		add += s.EntriesAdded
		rem += s.EntriesRemoved
	}
	var b strings.Builder
	if len(d.Sets) == 0 {
		b.WriteString("sets unchanged")
	} else {
		n := "sets"
		if len(d.Sets) == 1 {
			n = "set"
		}
		fmt.Fprintf(&b, "%d %s, +%s −%s entries", len(d.Sets), n, thousands(add), thousands(rem))
	}
	b.WriteString(", ")
	r := d.Rules
	switch {
	case r.Empty():
		b.WriteString("rules unchanged")
	default:
		var parts []string
		for _, x := range []struct {
			n    int
			what string
		}{{len(r.Added), "added"}, {len(r.Removed), "removed"}, {len(r.Changed), "changed"}} {
			if x.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
			}
		}
		if r.Reordered {
			parts = append(parts, "reordered")
		}
		b.WriteString("rules: " + strings.Join(parts, ", "))
	}
	return b.String()
}

// WriteTo writes the summary and one line per changed set and rule.
func (d PlanDiff) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	b.WriteString(d.String() + "\n")
	for _, s := range d.Sets {
		state := ""
		switch {
		case s.New:
			state = " (new)"
		case s.Gone:
			state = " (gone)"
		}
		fmt.Fprintf(&b, "  set %s%s: +%s −%s entries", s.Name, state, thousands(s.EntriesAdded), thousands(s.EntriesRemoved))
		if n := s.Added.NumAddrs4(); n > 0 {
			fmt.Fprintf(&b, ", +%s IPv4 addresses", thousands(int(n)))
		}
		if n := s.Removed.NumAddrs4(); n > 0 {
			fmt.Fprintf(&b, ", −%s IPv4 addresses", thousands(int(n)))
		}
		b.WriteString("\n")
	}
	for _, x := range []struct {
		sign  string
		names []string
	}{{"+", d.Rules.Added}, {"−", d.Rules.Removed}, {"~", d.Rules.Changed}} {
		for _, n := range x.names {
			fmt.Fprintf(&b, "  rule %s%s\n", x.sign, n)
		}
	}
	if d.Rules.Reordered {
		b.WriteString("  rules reordered\n")
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// thousands formats n with commas: 1,204.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
