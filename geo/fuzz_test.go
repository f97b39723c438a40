package geo

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The parsers must return a DB or an error for any input, never panic or
// hang, and a DB they return must answer lookups consistently with its
// sets. Seeds are in testdata/fuzz.

func fuzzCheck(t *testing.T, db *DB, err error) {
	if err != nil {
		return
	}
	all := db.Unknown()
	for _, s := range db.Sets() {
		if !all.Intersect(s).IsEmpty() {
			t.Fatal("sets overlap")
		}
		all = all.Union(s)
	}
	for _, c := range db.Countries() {
		s, err := db.Country(string(c))
		if err != nil {
			t.Fatal(err)
		}
		for p := range s.AllPrefixes() {
			if got, ok := db.Lookup(p.Addr()); !ok || got != c {
				t.Fatalf("Lookup(%s) = %q, want %q", p.Addr(), got, c)
			}
			break
		}
	}
}

func FuzzCSV(f *testing.F) {
	seed, _ := os.ReadFile("testdata/ranges.csv")
	f.Add(seed)
	f.Add([]byte("1.0.0.0,1.0.0.255,AU\n1.0.0.128,1.0.1.0,AU\n::,ffff::,us\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := ReadCSV(ctx, "fuzz", bytes.NewReader(data), nil)
		fuzzCheck(t, db, err)
	})
}

func FuzzZone(f *testing.F) {
	seed, _ := os.ReadFile("testdata/zones/us.zone")
	f.Add(seed)
	f.Add([]byte("0.0.0.0/0\n::/0\n::ffff:1.2.3.4/128\n1.2.3.4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := ReadZone(ctx, "fuzz", bytes.NewReader(data), "US", nil)
		fuzzCheck(t, db, err)
	})
}

func FuzzRIR(f *testing.F) {
	seed, _ := os.ReadFile("testdata/delegated-test-extended-latest")
	f.Add(seed)
	f.Add([]byte("x|AU|ipv4|255.255.255.0|256|2011|assigned\nx|NZ|ipv6|::|0|1|allocated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := ReadRIR(ctx, "fuzz", bytes.NewReader(data), nil)
		fuzzCheck(t, db, err)
	})
}

func FuzzGeoLite2CSV(f *testing.F) {
	loc, _ := os.ReadFile("testdata/geolite2/GeoLite2-Country-Locations-en.csv")
	blk, _ := os.ReadFile("testdata/geolite2/GeoLite2-Country-Blocks-IPv4.csv")
	f.Add(loc, blk)
	f.Fuzz(func(t *testing.T, loc, blk []byte) {
		open := func(p string) (readCloser, error) {
			if strings.Contains(p, "Locations") {
				return nopCloser{bytes.NewReader(loc)}, nil
			}
			return nopCloser{bytes.NewReader(blk)}, nil
		}
		db, err := readGeoLite2CSVFiles(ctx, "fuzz", "Locations.csv", []string{"Blocks.csv"}, open, nil)
		fuzzCheck(t, db, err)
	})
}

// FuzzMMDB mutates the sample database. Inputs are capped in size: a
// valid file's work is linear in its size, which is what is being checked.
func FuzzMMDB(f *testing.F) {
	seed, _ := os.ReadFile("testdata/sample.mmdb")
	f.Add(seed)
	for _, name := range []string{"cyclic-data-structure.mmdb", "libmaxminddb-deep-nesting.mmdb"} {
		if b, err := os.ReadFile("../../shared/data/maxmind-bad/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		db, err := LoadMMDBBytes(ctx, "fuzz", data, nil)
		fuzzCheck(t, db, err)
	})
}
