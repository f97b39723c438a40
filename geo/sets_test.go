package geo

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// testDBs loads the fixtures of every kind, and a merge of some.
func testDBs(t *testing.T) map[string]*DB {
	t.Helper()
	dbs := map[string]*DB{}
	add := func(name string, db *DB, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dbs[name] = db
	}
	db, err := LoadMMDB(ctx, "testdata/sample.mmdb", nil)
	add("sample", db, err)
	db, err = LoadMMDB(ctx, "testdata/sample.mmdb", &Options{Countries: []string{"US", "GB"}})
	add("sample US,GB", db, err)
	layouts, _ := filepath.Glob("testdata/layouts/*.mmdb")
	for _, p := range layouts {
		db, err = LoadMMDB(ctx, p, nil)
		add(p, db, err)
	}
	zones, err := LoadZoneDir(ctx, "testdata/zones", nil)
	add("zones", zones, err)
	rir, err := LoadRIR(ctx, "testdata/delegated-test-extended-latest", nil)
	add("rir", rir, err)
	csv, err := LoadCSV(ctx, "testdata/ranges.csv", nil)
	add("csv", csv, err)
	// Out of order, so that the table is built by the sorting sweep.
	unsorted, err := ReadCSV(ctx, "unsorted", strings.NewReader("1.0.2.0,1.0.2.255,AU\n1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.255,GB\n"), nil)
	add("unsorted", unsorted, err)
	m, err := Merge(unsorted, zones, rir)
	add("merged", m, err)
	return dbs
}

// TestTableRuns holds the tables' run counts to their invariant, and
// maxRuns to being a bound on what runs4 and runs6 emit: collectSets
// reserves storage by it.
func TestTableRuns(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 5))
	for name, db := range testDBs(t) {
		checkRuns(t, name+" IPv4", &db.t4)
		checkRuns(t, name+" IPv6", &db.t6)
		for try := range 20 {
			n := 1 + rnd.IntN(4)
			group := make([]int32, len(db.origins))
			for l := range group {
				group[l] = int32(rnd.IntN(n+1)) - 1
				if try == 0 {
					group[l] = int32(l) // one group per label: exact
					n = len(group)
				}
			}
			got4, got6 := make([]int, n), make([]int, n)
			runs4(&db.t4, group, func(g int32, _, _ u32) { got4[g]++ })
			runs6(&db.t6, group, func(g int32, _, _ u128) { got6[g]++ })
			max4, exact4 := maxRuns(&db.t4, group, n)
			max6, exact6 := maxRuns(&db.t6, group, n)
			if try == 0 && !(exact4 && exact6) {
				t.Fatalf("%s: one group per label, not exact", name)
			}
			for g := range n {
				if got4[g] > max4[g] || got6[g] > max6[g] || exact4 && got4[g] != max4[g] || exact6 && got6[g] != max6[g] {
					t.Fatalf("%s: group %d of %v: %d+%d runs, maxRuns %d+%d (exact %v %v)", name, g, group, got4[g], got6[g], max4[g], max6[g], exact4, exact6)
				}
			}
		}
	}
}

func checkRuns[K key[K]](t *testing.T, name string, tab *table[K]) {
	t.Helper()
	var want []int
	for i := range tab.len() {
		l := int(tab.labelAt(i))
		if i > 0 && tab.labelAt(i-1) == uint16(l) {
			continue
		}
		for len(want) <= l {
			want = append(want, 0)
		}
		want[l]++
	}
	if len(want) != len(tab.runs) {
		t.Fatalf("%s: runs %v, want %v", name, tab.runs, want)
	}
	for l := range want {
		if want[l] != tab.runs[l] {
			t.Fatalf("%s: runs %v, want %v", name, tab.runs, want)
		}
	}
}
