package geo

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/oschwald/maxminddb-golang/v2"
)

// TestSharedDB checks the whole real database against maxminddb's own
// lookups, network by network.
func TestSharedDB(t *testing.T) {
	path := testenv.SharedFile(t, "geo-whois-asn-country.mmdb")
	db, err := LoadMMDB(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := db.Info()
	if info.Networks != 494271+516614 || info.Countries < 240 {
		t.Errorf("Info = %+v", info)
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for res := range r.Networks() {
		var cc string
		if err := res.DecodePath(&cc, "country_code"); err != nil {
			t.Fatal(err)
		}
		p := res.Prefix()
		if n++; n%97 != 0 {
			continue // every 97th network, first and last address
		}
		for _, a := range []netip.Addr{p.Masked().Addr(), lastOf(p)} {
			got, ok := db.Lookup(a)
			if !ok || string(got) != cc {
				t.Fatalf("Lookup(%s) = %q, %v; maxminddb %q", a, got, ok, cc)
			}
			pv, _ := db.Explain(a)
			if pfx, ok := pv.Network.Prefix(); !ok || pfx != p {
				t.Fatalf("Explain(%s).Network = %v, want %v", a, pv.Network, p)
			}
		}
	}
	six, err := db.Group("US", "CA", "GB", "AU", "NZ", "IE")
	if err != nil {
		t.Fatal(err)
	}
	sets := db.Sets()
	var union = sets["US"]
	for _, c := range []Country{"CA", "GB", "AU", "NZ", "IE"} {
		union = union.Union(sets[c])
	}
	if !six.Equal(union) {
		t.Error("Group differs from the union of Sets")
	}
	// A restricted load gives the same group.
	only, err := LoadMMDB(ctx, path, &Options{Countries: []string{"US", "CA", "GB", "AU", "NZ", "IE"}})
	if err != nil {
		t.Fatal(err)
	}
	six2, err := only.Group("US", "CA", "GB", "AU", "NZ", "IE")
	if err != nil || !six2.Equal(six) {
		t.Errorf("restricted load's group differs (%v)", err)
	}
	if !only.Unknown().Equal(db.Unknown()) {
		t.Error("restricted load's Unknown differs")
	}
	// Diff of a database with itself restricted: everything else is lost.
	if d := Diff(db, only); len(d) != info.Countries-6 {
		t.Errorf("Diff: %d changes, want %d", len(d), info.Countries-6)
	}
}

func TestMaxMindTestDBs(t *testing.T) {
	dir := filepath.Dir(testenv.SharedFile(t, "maxmind-test/GeoIP2-Country-Test.mmdb"))
	tests := []struct {
		file  string
		field Field
		want  map[string]string
	}{
		// From MaxMind's source data (GeoIP2-Country-Test.json).
		{"GeoIP2-Country-Test.mmdb", FieldCountry, map[string]string{"81.2.69.160": "GB", "2001:218::": "JP", "216.160.83.56": "US", "89.160.20.112": "SE"}},
		{"GeoLite2-Country-Test.mmdb", FieldCountry, map[string]string{"81.2.69.160": "GB", "2001:218::": "JP"}},
		// The test data registers these networks in other countries.
		{"GeoIP2-Country-Test.mmdb", FieldRegistered, map[string]string{"81.2.69.160": "US", "216.160.83.56": "GB", "89.160.20.112": "DE", "2001:218::": "JP"}},
		{"GeoIP2-Country-Test.mmdb", FieldRepresented, map[string]string{"81.2.69.160": "GB"}},
	}
	for _, tt := range tests {
		db, err := LoadMMDB(ctx, filepath.Join(dir, tt.file), &Options{Field: tt.field})
		if err != nil {
			t.Fatal(err)
		}
		checkLookups(t, db, tt.want)
		// The continent comes from the records where they have one.
		if tt.field == FieldCountry {
			eu, err := db.Continent(Europe)
			if err != nil || !eu.Contains(netip.MustParseAddr("81.2.69.160")) {
				t.Errorf("%s: Continent(EU) = %v, %v", tt.file, eu, err)
			}
		}
	}
	// The fields give different answers somewhere in the GeoIP2 test data.
	c, _ := LoadMMDB(ctx, filepath.Join(dir, "GeoIP2-Country-Test.mmdb"), nil)
	r, _ := LoadMMDB(ctx, filepath.Join(dir, "GeoIP2-Country-Test.mmdb"), &Options{Field: FieldRegistered})
	p, _ := LoadMMDB(ctx, filepath.Join(dir, "GeoIP2-Country-Test.mmdb"), &Options{Field: FieldRepresented})
	if len(Diff(c, r)) == 0 || len(Diff(c, p)) == 0 {
		t.Error("registered and represented fields load the same as country")
	}
	for _, f := range []string{"MaxMind-DB-test-broken-pointers-24.mmdb", "MaxMind-DB-test-broken-search-tree-24.mmdb"} {
		if _, err := LoadMMDB(ctx, filepath.Join(dir, f), nil); err == nil {
			t.Errorf("%s: no error", f)
		}
	}
}

// TestBadDBs: every corrupt database returns an error, promptly.
func TestBadDBs(t *testing.T) {
	dir := filepath.Dir(testenv.SharedFile(t, "maxmind-bad/cyclic-data-structure.mmdb"))
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Run(e.Name(), func(t *testing.T) {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			for _, verify := range []bool{false, true} {
				db, err := LoadMMDB(c, filepath.Join(dir, e.Name()), &Options{Verify: verify})
				if err == nil {
					t.Fatalf("verify=%v: no error, loaded %+v", verify, db.Info())
				}
				t.Logf("verify=%v: %v", verify, err)
			}
		})
	}
}

func TestSample(t *testing.T) {
	fi, err := os.Stat("testdata/sample.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 300<<10 {
		t.Errorf("sample is %d bytes; keep it under 300 KiB", fi.Size())
	}
	db, err := LoadMMDB(ctx, "testdata/sample.mmdb", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Group("US", "CA", "GB", "AU", "NZ", "IE"); err != nil {
		t.Errorf("sample lacks an english country: %v", err)
	}
}

// TestCraftedTrees builds search trees that the iterator would walk
// forever and checks that the load refuses them.
func TestCraftedTrees(t *testing.T) {
	good, err := os.ReadFile("testdata/sample.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	r, err := maxminddb.OpenBytes(good)
	if err != nil {
		t.Fatal(err)
	}
	n := int(r.Metadata.NodeCount)
	r.Close()
	if r.Metadata.RecordSize != 24 {
		t.Fatal("sample must have 24-bit records")
	}
	put := func(b []byte, node int, left, right uint32) {
		o := node * 6
		b[o], b[o+1], b[o+2] = byte(left>>16), byte(left>>8), byte(left)
		b[o+3], b[o+4], b[o+5] = byte(right>>16), byte(right>>8), byte(right)
	}
	// A chain where both records of each node point to the next: 2^k
	// paths to the last node, which points to "no data".
	chain := append([]byte(nil), good...)
	for i := 0; i < 100; i++ {
		put(chain, i, uint32(i+1), uint32(i+1))
	}
	put(chain, 100, uint32(n), uint32(n))
	// Every node points to the root.
	loop := append([]byte(nil), good...)
	for i := 0; i < n; i++ {
		put(loop, i, 0, 0)
	}
	for name, data := range map[string][]byte{"shared-chain": chain, "root-loop": loop} {
		done := make(chan error, 1)
		go func() {
			_, err := LoadMMDBBytes(ctx, name, data, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: %v, want ErrCorrupt", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: load did not return", name)
		}
	}
}
