package geo_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"strings"

	"github.com/geosteer/geosteer/geo"
)

// countryDB returns the country database geo.FindDefault finds: an
// installed GeoLite2 (or similar) database, else, in this source tree,
// the small sample in testdata; it says which.
func countryDB() string {
	p, ok := geo.FindDefault()
	if !ok {
		log.Fatal("no country database found")
	}
	log.Printf("using %s", p)
	return p
}

// From a country database to the "english" set in a few lines.
func Example() {
	db, err := geo.Open(context.Background(), countryDB(), nil)
	if err != nil {
		log.Fatal(err)
	}
	english, err := db.Group("US", "CA", "GB", "AU", "NZ", "IE")
	if err != nil {
		log.Fatal(err) // an unknown code or a country without networks
	}
	fmt.Println(english.Contains(netip.MustParseAddr("8.8.8.8")))
	fmt.Println(english.Contains(netip.MustParseAddr("193.0.6.139"))) // RIPE NCC, NL
	// Output:
	// true
	// false
}

func ExampleDB_Lookup() {
	db, err := geo.LoadMMDB(context.Background(), "testdata/sample.mmdb", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"81.2.69.160", "::ffff:8.8.8.8", "10.1.2.3"} {
		c, ok := db.Lookup(netip.MustParseAddr(s))
		fmt.Println(s, c, ok, c.Name())
	}
	// Output:
	// 81.2.69.160 GB true United Kingdom
	// ::ffff:8.8.8.8 US true United States
	// 10.1.2.3  false
}

func ExampleDB_Explain() {
	db, err := geo.LoadMMDB(context.Background(), "testdata/sample.mmdb", &geo.Options{Name: "sample.mmdb"})
	if err != nil {
		log.Fatal(err)
	}
	p, _ := db.Explain(netip.MustParseAddr("8.8.8.8"))
	fmt.Println(p)
	// Output:
	// US from sample.mmdb network 8.8.0.0/15
}

// A geofeed of one's own takes precedence over the registry data.
func ExampleMerge() {
	ctx := context.Background()
	feed, err := geo.ReadCSV(ctx, "feed.csv", strings.NewReader("1.0.1.0,1.0.1.255,GB\n"), nil)
	if err != nil {
		log.Fatal(err)
	}
	rir, err := geo.LoadRIR(ctx, "testdata/delegated-test-extended-latest", nil)
	if err != nil {
		log.Fatal(err)
	}
	db, err := geo.Merge(feed, rir)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"1.0.0.1", "1.0.1.1"} {
		p, _ := db.Explain(netip.MustParseAddr(s))
		fmt.Println(s, p)
	}
	// Output:
	// 1.0.0.1 AU from testdata/delegated-test-extended-latest:7 range 1.0.0.0-1.0.2.255
	// 1.0.1.1 GB from feed.csv:1 network 1.0.1.0/24
}

func ExampleDiff() {
	ctx := context.Background()
	old, _ := geo.ReadCSV(ctx, "old.csv", strings.NewReader("1.0.0.0,1.0.1.255,AU\n"), nil)
	new, _ := geo.ReadCSV(ctx, "new.csv", strings.NewReader("1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.255,NZ\n"), nil)
	for _, c := range geo.Diff(old, new) {
		fmt.Println(c.Country, "gained", c.Added, "lost", c.Removed)
	}
	// Output:
	// AU gained {} lost {1.0.1.0/24}
	// NZ gained {1.0.1.0/24} lost {}
}

func ExampleLoadZoneDir() {
	db, err := geo.LoadZoneDir(context.Background(), "testdata/zones", nil)
	if err != nil {
		log.Fatal(err)
	}
	ca, _ := db.Country("ca")
	fmt.Println(db.Countries(), ca)
	// Output:
	// [CA US] {24.48.0.0/15, 192.0.2.7}
}

func ExampleDB_Unknown() {
	db, err := geo.LoadCSV(context.Background(), "testdata/ranges.csv", nil)
	if err != nil {
		log.Fatal(err)
	}
	unknown := db.Unknown()
	fmt.Println(unknown.Contains(netip.MustParseAddr("9.9.9.9")), unknown.Contains(netip.MustParseAddr("8.8.8.8")))
	// Output:
	// true false
}
