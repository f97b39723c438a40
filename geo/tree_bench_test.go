package geo

import (
	"os"
	"testing"

	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/oschwald/maxminddb-golang/v2"
)

// BenchmarkWalk is the search tree walk alone, with no work per network:
// the part of a load that the file's size fixes.
func BenchmarkWalk(b *testing.B) {
	data, err := os.ReadFile(testenv.SharedFile(b, "geo-whois-asn-country.mmdb"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tree", func(b *testing.B) {
		for b.Loop() {
			t, err := newSearchTree(data, r.Metadata)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			if err := t.walk(func(ls []leaf) error { n += len(ls); return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			n := 0
			for range r.Networks() {
				n++
			}
		}
	})
}

func BenchmarkSets(b *testing.B) {
	db, err := LoadMMDB(ctx, testenv.SharedFile(b, "geo-whois-asn-country.mmdb"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			db.Sets()
		}
	})
	b.Run("six", func(b *testing.B) {
		for b.Loop() {
			db.Group("US", "CA", "GB", "AU", "NZ", "IE")
		}
	})
}

// BenchmarkCompile is the cost of the first Lookup: compiling the DB into
// a cidr.Table.
func BenchmarkCompile(b *testing.B) {
	db, err := LoadMMDB(ctx, testenv.SharedFile(b, "geo-whois-asn-country.mmdb"), nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		db.lut = compiled{}
		db.compile()
		if db.lut.tab == nil {
			b.Fatal("not compiled")
		}
	}
}
