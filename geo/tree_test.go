package geo

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/oschwald/maxminddb-golang/v2"
)

// The search tree walk must report exactly what maxminddb's own iterator
// does: the same networks, in the same order, with the same data offsets,
// IPv4 networks as IPv4, networks without data included.

type walked struct {
	prefix string
	off    uint64 // notFound for a network without data
}

// libraryNetworks returns what Reader.Networks gives, up to its first error.
func libraryNetworks(r *maxminddb.Reader) (out []walked, err error) {
	for res := range r.Networks(maxminddb.IncludeNetworksWithoutData()) {
		if err := res.Err(); err != nil {
			return out, err
		}
		off := notFound
		if res.Found() {
			off = uint64(res.Offset())
		}
		out = append(out, walked{res.Prefix().String(), off})
	}
	return out, nil
}

func treeNetworks(data []byte, md maxminddb.Metadata) (out []walked, err error) {
	t, err := newSearchTree(data, md)
	if err != nil {
		return nil, err
	}
	err = t.walk(func(ls []leaf) error {
		for _, l := range ls {
			out = append(out, walked{l.prefix().String(), l.off})
		}
		return nil
	})
	return out, err
}

// compareWalk checks the walk of data against the library's iterator. A
// walk that fails must fail where the library does, or on a node the
// library would reach twice (checked by the caller); one that succeeds must
// match the library network for network.
func compareWalk(t *testing.T, name string, data []byte) (walkErr error) {
	t.Helper()
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return err // nothing to compare with
	}
	defer r.Close()
	got, walkErr := treeNetworks(data, r.Metadata)
	if walkErr != nil && !shared(walkErr) {
		// The library must fail too, after the same networks.
		want, libErr := libraryNetworks(r)
		if libErr == nil {
			t.Fatalf("%s: walk: %v; library: no error", name, walkErr)
		}
		diffWalks(t, name, got, want)
		return walkErr
	}
	if walkErr != nil {
		return walkErr // a crafted tree the library would walk for ever
	}
	want, libErr := libraryNetworks(r)
	if libErr != nil {
		t.Fatalf("%s: walk: no error; library: %v after %d networks", name, libErr, len(want))
	}
	diffWalks(t, name, got, want)
	return nil
}

func shared(err error) bool { return errors.Is(err, errShared) }

func diffWalks(t *testing.T, name string, got, want []walked) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: network %d: walk %v, library %v", name, i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: walk gives %d networks, library %d", name, len(got), len(want))
	}
}

func TestWalkMatchesLibrary(t *testing.T) {
	testWalkFile(t, "testdata/sample.mmdb")
	// IPv4 and IPv6 trees, 24-, 28- and 32-bit records, with and without
	// the IPv4 aliases: written by mmdbwriter (benchmarks'
	// TestGeoTreeLayouts with -geo.layouts).
	layouts, _ := filepath.Glob("testdata/layouts/*.mmdb")
	if len(layouts) != 9 {
		t.Errorf("testdata/layouts: %d databases, want 9", len(layouts))
	}
	for _, f := range layouts {
		testWalkFile(t, f)
	}
	t.Run("shared", func(t *testing.T) {
		testWalkFile(t, testenv.SharedFile(t, "geo-whois-asn-country.mmdb"))
	})
	t.Run("maxmind-test", func(t *testing.T) {
		dir := filepath.Dir(testenv.SharedFile(t, "maxmind-test/GeoIP2-Country-Test.mmdb"))
		m, _ := filepath.Glob(filepath.Join(dir, "*.mmdb"))
		for _, f := range m {
			testWalkFile(t, f)
		}
	})
}

func testWalkFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = compareWalk(t, path, data)
	t.Logf("%s: walk error: %v", filepath.Base(path), err)
}

// FuzzSearchTree: on any input the walk returns, without panicking; when it
// succeeds it matches the library network for network, and when it fails
// the library fails at the same network (or would walk a shared node).
func FuzzSearchTree(f *testing.F) {
	for _, name := range []string{"sample.mmdb", "layouts/ipv4-28bit.mmdb", "layouts/ipv6-32bit-aliased.mmdb"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	for _, name := range []string{"maxmind-test/GeoIP2-Country-Test.mmdb", "maxmind-test/MaxMind-DB-test-broken-search-tree-24.mmdb", "maxmind-bad/libmaxminddb-corrupt-search-tree.mmdb"} {
		if b, err := os.ReadFile(filepath.Join("../../shared/data", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		compareWalk(t, "fuzz", data)
	})
}
