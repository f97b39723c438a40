package geo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindDefault(t *testing.T) {
	dir := t.TempDir()
	installed := filepath.Join(dir, "GeoLite2-Country.mmdb")
	if err := os.WriteFile(installed, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A checkout elsewhere: the sample is found from any directory in it,
	// and only from there.
	checkout := filepath.Join(dir, "src")
	for _, f := range []struct{ name, data string }{
		{"go.mod", "// a comment\nmodule github.com/geosteer/geosteer\n\ngo 1.26.0\n"},
		{"geo/testdata/sample.mmdb", "x"},
		{"benchmarks/go.mod", "module github.com/geosteer/geosteer/benchmarks\n"},
		{"other/go.mod", "module example.com/other\n\nrequire github.com/geosteer/geosteer v1.0.0\n"},
	} {
		p := filepath.Join(checkout, f.name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(checkout, "examples", "splitter"), 0o755)

	for _, tt := range []struct {
		name  string
		paths []string
		wd    string
		want  string // "" for not found
	}{
		{"installed", []string{filepath.Join(dir, "missing.mmdb"), dir, installed}, dir, installed},
		{"installed wins over the sample", []string{installed}, checkout, installed},
		{"root of a checkout", nil, checkout, "geo/testdata/sample.mmdb"},
		{"deep in a checkout", nil, filepath.Join(checkout, "examples", "splitter"), "../../geo/testdata/sample.mmdb"},
		{"nested module", nil, filepath.Join(checkout, "benchmarks"), "../geo/testdata/sample.mmdb"},
		{"outside", nil, dir, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := DefaultPaths
			DefaultPaths = tt.paths
			defer func() { DefaultPaths = old }()
			t.Chdir(tt.wd)
			got, ok := FindDefault()
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("FindDefault() = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
	// A module that depends on geosteer is not geosteer.
	t.Run("dependent module", func(t *testing.T) {
		old := DefaultPaths
		DefaultPaths = nil
		defer func() { DefaultPaths = old }()
		os.Rename(filepath.Join(checkout, "go.mod"), filepath.Join(checkout, "go.mod.off"))
		t.Chdir(filepath.Join(checkout, "other"))
		if got, ok := FindDefault(); ok {
			t.Errorf("FindDefault() = %q from a dependent module", got)
		}
	})
}
