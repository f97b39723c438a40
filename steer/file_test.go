package steer_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/steer"
)

const sampleDB = "../geo/testdata/sample.mmdb"

func TestCompileFile(t *testing.T) {
	var logs bytes.Buffer
	opts := &steer.Options{Now: when.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	plan, err := steer.CompileFile("testdata/seed.yaml", sampleDB, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "path="+sampleDB) {
		t.Errorf("the log does not name the database:\n%s", logs.String())
	}
	// US per the sample database; its provenance is kept for Explain.
	if d := plan.Route(netip.MustParseAddr("8.8.8.8"), mx1, 25); d.Target() != "a" {
		t.Errorf("8.8.8.8 on mx1 → %q, want a", d.Target())
	}
	if e := plan.Explain(netip.MustParseAddr("8.8.8.8"), mx1, 25).String(); !strings.Contains(e, "sample.mmdb") {
		t.Errorf("Explain does not name the database: %s", e)
	}

	// The default database, found from inside this source tree.
	old := geo.DefaultPaths
	defer func() { geo.DefaultPaths = old }()
	geo.DefaultPaths = nil
	logs.Reset()
	byDefault, err := steer.CompileFile("testdata/seed.yaml", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !byDefault.Equal(plan) || !strings.Contains(logs.String(), "path="+sampleDB) {
		t.Errorf("the default database was not the sample:\n%s", logs.String())
	}
}

func TestCompileFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	seed, err := os.ReadFile("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := write("bad.yaml", strings.Replace(string(seed), "    to: foreign\n", "    to: nowhere\n", 1))
	for _, tt := range []struct {
		name, policy, db string
		want             []string
	}{
		{"missing policy", filepath.Join(dir, "none.yaml"), sampleDB, []string{"none.yaml", "no such file"}},
		{"bad policy", bad, sampleDB, []string{"bad.yaml:61: rules[0].to[0]: not defined", "nowhere"}},
		{"missing database", "testdata/seed.yaml", filepath.Join(dir, "none.mmdb"), []string{"none.mmdb", "no such file"}},
		{"not a database", "testdata/seed.yaml", bad, []string{"bad.yaml: not a MaxMind DB"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := steer.CompileFile(tt.policy, tt.db, &steer.Options{Now: when.Now})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
	if _, err := steer.CompileFile(bad, sampleDB, nil); !errors.Is(err, steer.ErrUndefined) {
		t.Errorf("bad policy: %v, want ErrUndefined", err)
	}
}

// Without a database, safety.on_missing_data decides.
func TestCompileFileNoData(t *testing.T) {
	old := geo.DefaultPaths
	defer func() { geo.DefaultPaths = old }()
	geo.DefaultPaths = []string{"/nonexistent/GeoIP/GeoLite2-Country.mmdb"}
	seed, err := filepath.Abs("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(seed)
	dir := t.TempDir()
	t.Chdir(dir) // outside the source tree: no sample either
	strict := filepath.Join(dir, "error.yaml")
	os.WriteFile(strict, bytes.Replace(src, []byte("on_missing_data: normal"), []byte("on_missing_data: error"), 1), 0o644)

	var logs bytes.Buffer
	plan, err := steer.CompileFile(seed, "", &steer.Options{Now: when.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if d := plan.Route(netip.MustParseAddr("8.8.8.8"), mx1, 25); d.Target() != "a" || len(plan.Sets) != 0 {
		t.Errorf("on_missing_data normal: 8.8.8.8 → %q, %d sets", d.Target(), len(plan.Sets))
	}
	if !strings.Contains(logs.String(), "no country database") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	_, err = steer.CompileFile(strict, "", nil)
	if !errors.Is(err, steer.ErrMissingData) || !strings.Contains(err.Error(), "none was found in /nonexistent/GeoIP") {
		t.Errorf("on_missing_data error: %v", err)
	}

	// A policy without geo-derived groups needs no database.
	lists := filepath.Join(dir, "lists.yaml")
	os.WriteFile(lists, bytes.Replace(src, []byte("countries: [US, CA, GB, AU, NZ, IE]"), []byte("prefixes: [8.0.0.0/8]"), 1), 0o644)
	if plan, err = steer.CompileFile(lists, filepath.Join(dir, "never-opened.mmdb"), nil); err != nil {
		t.Fatal(err)
	}
	if d := plan.Route(netip.MustParseAddr("9.9.9.9"), mx1, 25); d.Target() != "foreign" {
		t.Errorf("lists policy: 9.9.9.9 → %q", d.Target())
	}
}

// A policy file and a country database (anything geo.Open reads): what a
// command's "-policy FILE -db PATH" compiles to.
func ExampleCompileFile() {
	plan, err := steer.CompileFile("testdata/seed.yaml", "../geo/testdata/sample.mmdb", &steer.Options{
		Backends: []steer.Capabilities{steer.NFTables},
	})
	if err != nil {
		fmt.Println(err) // file:line: field: problem, for each problem
		return
	}
	fmt.Println(steer.Diff(nil, plan))
	fmt.Println(plan.Explain(netip.MustParseAddr("81.2.69.160"), mx2, 25))
	// Output:
	// 1 set, +1,404 −0 entries, rules: 12 added
	// rule split-mx2-v4-25-0 (policy rule split) → b 10.0.0.2:25; source in split part 0.0.0.0-127.255.255.255; source in set english through GB; data: GB from ../geo/testdata/sample.mmdb network 81.2.64.0/18
}
