package geo

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

// Merge combines sources by precedence: for each address the first DB in
// the list that has data for it gives the answer (a geofeed before WHOIS
// before ASN data, say). Data for a country a source did not load
// (Options.Countries) still counts as that source's answer. Explain on the
// result names the source and its own network.
func Merge(dbs ...*DB) (*DB, error) {
	if len(dbs) == 0 {
		return nil, fmt.Errorf("geo: Merge: %w: no sources", ErrEmpty)
	}
	if len(dbs) > 0xffff {
		return nil, errors.New("geo: Merge: too many sources")
	}
	m := &DB{origins: []origin{{}}, sources: slices.Clone(dbs)}
	idx := map[origin]uint16{}
	remap := make([][]uint16, len(dbs))
	names := make([]string, len(dbs))
	for i, db := range dbs {
		names[i] = db.info.Name
		remap[i] = make([]uint16, len(db.origins))
		for l, o := range db.origins {
			if l == 0 {
				continue
			}
			o.src = i
			lb, ok := idx[o]
			if !ok {
				if len(m.origins) > 0xffff {
					return nil, errors.New("geo: Merge: more than 65,535 distinct origins")
				}
				lb = uint16(len(m.origins))
				m.origins = append(m.origins, o)
				idx[o] = lb
			}
			remap[i][l] = lb
		}
		m.info.Networks += db.info.Networks
		m.info.NoCountry += db.info.NoCountry
		m.info.Warnings = append(m.info.Warnings, db.info.Warnings...)
	}
	t4 := make([]*table[u32], len(dbs))
	t6 := make([]*table[u128], len(dbs))
	for i, db := range dbs {
		t4[i], t6[i] = &db.t4, &db.t6
	}
	m.t4 = mergeTables(t4, remap)
	m.t6 = mergeTables(t6, remap)
	m.info.Name = "merge(" + strings.Join(names, ", ") + ")"
	m.info.Kind = "merged"
	m.info.Countries = len(m.Countries())
	return m, nil
}

// mergeTables sweeps the tables' boundaries in order, giving each piece
// the label of the first table with data there. Adjacent pieces with the
// same label join: Explain asks the source for its network.
func mergeTables[K key[K]](ts []*table[K], remap [][]uint16) table[K] {
	var out table[K]
	idx := make([]int, len(ts))
	var pos K
	for {
		label := uint16(0)
		for i, t := range ts {
			if t.len() == 0 {
				continue
			}
			for idx[i]+1 < t.len() && !pos.less(t.start[idx[i]+1]) {
				idx[i]++
			}
			if lb := t.label[idx[i]]; lb != 0 {
				label = remap[i][lb]
				break
			}
		}
		if n := len(out.label); n == 0 || out.label[n-1] != label {
			out.start = append(out.start, pos)
			out.label = append(out.label, label)
		}
		// The next boundary after pos in any table.
		found := false
		var next K
		for i, t := range ts {
			j := idx[i] + 1
			for j < t.len() && !pos.less(t.start[j]) {
				j++
			}
			if j < t.len() && (!found || t.start[j].less(next)) {
				next, found = t.start[j], true
			}
		}
		if !found {
			break
		}
		pos = next
	}
	if len(out.start) == 1 && out.label[0] == 0 {
		return table[K]{} // no data at all
	}
	out.start = slices.Clip(out.start)
	out.label = slices.Clip(out.label)
	return out
}

// A Change is what one country gained and lost between two loads.
type Change struct {
	Country Country
	Added   cidr.Set // addresses that are the country's now and were not
	Removed cidr.Set // addresses that were the country's and are not now
}

// String summarises the change: counts of prefixes and IPv4 addresses.
func (c Change) String() string {
	return fmt.Sprintf("%s: +%d prefixes (%d IPv4 addresses), -%d prefixes (%d IPv4 addresses)",
		c.Country, c.Added.NumPrefixes(), c.Added.NumAddrs4(), c.Removed.NumPrefixes(), c.Removed.NumAddrs4())
}

// Diff returns, for every country whose addresses differ between two loads
// of a database, what it gained and lost, sorted by country: what a daily
// update reports as moved.
func Diff(old, new *DB) []Change {
	a, b := old.Sets(), new.Sets()
	var ccs []Country
	for c := range a {
		ccs = append(ccs, c)
	}
	for c := range b {
		if _, ok := a[c]; !ok {
			ccs = append(ccs, c)
		}
	}
	slices.Sort(ccs)
	var out []Change
	for _, c := range ccs {
		if a[c].Equal(b[c]) {
			continue
		}
		out = append(out, Change{c, b[c].Difference(a[c]), a[c].Difference(b[c])})
	}
	return out
}
