package geo

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/cidr"
)

var ctx = context.Background()

func mustSet(t *testing.T, list string) cidr.Set {
	t.Helper()
	s, err := cidr.ParseList("want", strings.NewReader(list), cidr.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkLookups(t *testing.T, db *DB, want map[string]string) {
	t.Helper()
	for a, w := range want {
		got, ok := db.Lookup(netip.MustParseAddr(a))
		if string(got) != w || ok != (w != "") {
			t.Errorf("Lookup(%s) = %q, %v; want %q", a, got, ok, w)
		}
	}
}

func TestLoaders(t *testing.T) {
	tests := []struct {
		name    string
		load    func() (*DB, error)
		lookups map[string]string
		sets    map[string]string // country → expected prefix list
	}{
		{
			name: "csv",
			load: func() (*DB, error) { return LoadCSV(ctx, "testdata/ranges.csv", nil) },
			lookups: map[string]string{
				"1.0.0.1": "AU", "1.0.2.9": "CN", "1.0.5.5": "AU", "1.0.8.0": "", "8.8.8.8": "US",
				"::ffff:8.8.8.8": "US", "2001:200::1": "JP", "2a00:1450::5": "IE", "2a00:1451::": "",
			},
			sets: map[string]string{"AU": "1.0.0.0/24\n1.0.4.0/22", "JP": "2001:200::/32"},
		},
		{
			name:    "zone",
			load:    func() (*DB, error) { return LoadZoneDir(ctx, "testdata/zones", nil) },
			lookups: map[string]string{"3.1.2.3": "US", "24.49.0.1": "CA", "192.0.2.7": "CA", "192.0.2.8": "", "2001:4860::1": "US"},
			sets:    map[string]string{"CA": "24.48.0.0/15\n192.0.2.7/32"},
		},
		{
			name:    "rir",
			load:    func() (*DB, error) { return LoadRIR(ctx, "testdata/delegated-test-extended-latest", nil) },
			lookups: map[string]string{"1.0.2.255": "AU", "1.0.3.0": "NZ", "1.0.4.1": "", "2001:200:1fff::": "JP", "2001:200:2000::": ""},
			sets:    map[string]string{"AU": "1.0.0.0/23\n1.0.2.0/24", "JP": "2001:200::/35"},
		},
		{
			name: "geolite2-csv",
			load: func() (*DB, error) { return LoadGeoLite2CSV(ctx, "testdata/geolite2", nil) },
			// 2.16.0.0/13 has a continent-level geoname: its registered
			// country (GB) answers; 8.8.8.0/24 has only a registered one.
			lookups: map[string]string{"1.0.0.1": "AU", "2.17.0.0": "GB", "81.2.69.161": "GB", "8.8.8.8": "US", "2001:4860::1": "US"},
			sets:    map[string]string{"GB": "2.16.0.0/13\n81.2.69.160/27"},
		},
		{
			name:    "open-dispatch-mmdb",
			load:    func() (*DB, error) { return Open(ctx, "testdata/sample.mmdb", nil) },
			lookups: map[string]string{"8.8.8.8": "US", "81.2.69.160": "GB", "2001:4860:4860::8888": "US", "10.0.0.1": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := tt.load()
			if err != nil {
				t.Fatal(err)
			}
			checkLookups(t, db, tt.lookups)
			for cc, list := range tt.sets {
				got, err := db.Country(cc)
				if err != nil {
					t.Fatal(err)
				}
				if want := mustSet(t, list); !got.Equal(want) {
					t.Errorf("Country(%s) = %v, want %v", cc, got, want)
				}
			}
			// Every address is in exactly one of: some country, Unknown.
			sets := db.Sets()
			union := db.Unknown()
			for _, s := range sets {
				if !s.Intersect(union).IsEmpty() {
					t.Errorf("country sets overlap each other or Unknown")
				}
				union = union.Union(s)
			}
			all := mustSet(t, "0.0.0.0/0\n::/0")
			if !union.Equal(all) {
				t.Errorf("countries ∪ unknown = %v, want everything", union)
			}
		})
	}
}

func TestGeoLite2CSVFields(t *testing.T) {
	db, err := LoadGeoLite2CSV(ctx, "testdata/geolite2", &Options{Field: FieldRegistered})
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, db, map[string]string{"2.17.0.0": "GB", "1.0.0.1": "AU"})
	eu, err := db.Continent("eu")
	if err != nil {
		t.Fatal(err)
	}
	if !eu.Contains(netip.MustParseAddr("81.2.69.170")) || eu.Contains(netip.MustParseAddr("8.8.8.8")) {
		t.Errorf("Continent(EU) = %v", eu)
	}
}

func TestBadLines(t *testing.T) {
	tests := []struct {
		name, input string
		read        func(string) (*DB, error)
		want        []string // substrings of the error, in order
		is          error
	}{
		{"csv fields", "1.0.0.0,1.0.0.255\n", csvRead, []string{"t:1:", "wrong number of fields"}, ErrFields},
		{"csv address", "1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.x,AU\n", csvRead, []string{"t:2:", "not an address"}, cidr.ErrSyntax},
		{"csv order", "1.0.1.0,1.0.0.0,AU\n", csvRead, []string{"t:1:"}, cidr.ErrRange},
		{"csv family", "1.0.0.0,::1,AU\n", csvRead, []string{"t:1:"}, cidr.ErrRange},
		{"csv country", "1.0.0.0,1.0.0.255,AUS\n", csvRead, []string{"t:1:", "AUS"}, ErrUnknownCountry},
		{"csv overlap", "1.0.0.0,1.0.0.255,AU\n1.0.0.128,1.0.1.0,NZ\n", csvRead, []string{"t:2:", "overlaps", "AU at t:1"}, ErrOverlap},
		{"csv empty", "# nothing\n", csvRead, []string{"no networks"}, ErrEmpty},
		{"zone syntax", "1.2.3.0/24\nbogus\n", zoneRead, []string{"t:2:", "bogus"}, cidr.ErrSyntax},
		{"zone host bits", "1.2.3.4/24\n", zoneRead, []string{"t:1:"}, cidr.ErrHostBits},
		{"rir fields", "test|AU|ipv4|1.0.0.0\n", rirRead, []string{"t:1:"}, ErrFields},
		{"rir count", "test|AU|ipv4|255.255.255.0|512|20110811|assigned\n", rirRead, []string{"t:1:"}, ErrCount},
		{"rir zero", "test|AU|ipv4|1.0.0.0|0|20110811|assigned\n", rirRead, []string{"t:1:"}, ErrCount},
		{"rir v6 length", "test|JP|ipv6|2001:200::|129|19990813|allocated\n", rirRead, []string{"t:1:"}, ErrCount},
		{"rir family", "test|JP|ipv6|1.0.0.0|24|19990813|allocated\n", rirRead, []string{"t:1:"}, cidr.ErrRange},
		{"rir country", "test|A1|ipv4|1.0.0.0|256|20110811|assigned\n", rirRead, []string{"t:1:"}, ErrUnknownCountry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := tt.read(tt.input)
			if err == nil {
				t.Fatalf("no error; loaded %+v", db.Info())
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			msg := err.Error()
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func csvRead(s string) (*DB, error)  { return ReadCSV(ctx, "t", strings.NewReader(s), nil) }
func zoneRead(s string) (*DB, error) { return ReadZone(ctx, "t", strings.NewReader(s), "us", nil) }
func rirRead(s string) (*DB, error)  { return ReadRIR(ctx, "t", strings.NewReader(s), nil) }

func TestTooManyErrorsStops(t *testing.T) {
	_, err := csvRead(strings.Repeat("x,y,z\n", 1000))
	if err == nil || strings.Count(err.Error(), "\n") > maxErrors+1 {
		t.Fatalf("want at most %d errors, got %v", maxErrors, err)
	}
}

func TestGroupErrors(t *testing.T) {
	db, err := LoadCSV(ctx, "testdata/ranges.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Group("au", "US", "XX", "GB", "usa")
	if !errors.Is(err, ErrUnknownCountry) || !errors.Is(err, ErrEmpty) {
		t.Errorf("Group error %v: want unknown (XX, usa) and empty (GB)", err)
	}
	for _, w := range []string{`"XX"`, `"usa"`, "GB (United Kingdom)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %s", err, w)
		}
	}
	if want := mustSet(t, "1.0.0.0/24\n1.0.4.0/22\n8.8.8.0/24"); !s.Equal(want) {
		t.Errorf("Group = %v, want %v", s, want)
	}
	if _, err := db.Continent("XY"); err == nil {
		t.Error("Continent(XY): no error")
	}
	if _, err := db.Continent("AF"); !errors.Is(err, ErrEmpty) {
		t.Errorf("Continent(AF) = %v, want ErrEmpty", err)
	}
	if _, err := LoadCSV(ctx, "testdata/ranges.csv", &Options{Countries: []string{"AU", "QQ"}}); !errors.Is(err, ErrUnknownCountry) {
		t.Errorf("Options.Countries with QQ: %v", err)
	}
}

func TestCountriesOption(t *testing.T) {
	db, err := LoadCSV(ctx, "testdata/ranges.csv", &Options{Countries: []string{"au"}})
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, db, map[string]string{"1.0.0.1": "AU", "1.0.2.0": "", "8.8.8.8": ""})
	// CN and US data exist, so they are not unknown.
	if db.Unknown().Contains(netip.MustParseAddr("8.8.8.8")) || !db.Unknown().Contains(netip.MustParseAddr("9.9.9.9")) {
		t.Error("Unknown wrong with a restricted load")
	}
	if got := db.Countries(); len(got) != 1 || got[0] != "AU" {
		t.Errorf("Countries() = %v", got)
	}
}

func TestMergeAndExplain(t *testing.T) {
	// The geofeed-like zone data first, then the RIR file.
	zones, err := LoadZoneDir(ctx, "testdata/zones", nil)
	if err != nil {
		t.Fatal(err)
	}
	feed, err := ReadCSV(ctx, "feed.csv", strings.NewReader("1.0.1.0,1.0.1.255,GB\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rir, err := LoadRIR(ctx, "testdata/delegated-test-extended-latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Merge(feed, zones, rir)
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, m, map[string]string{"1.0.0.5": "AU", "1.0.1.5": "GB", "1.0.2.5": "AU", "1.0.3.5": "NZ", "3.0.0.1": "US", "2001:200::": "JP", "9.9.9.9": ""})
	tests := []struct {
		addr, want string
	}{
		{"1.0.1.5", "GB from feed.csv:1 network 1.0.1.0/24"},
		{"1.0.2.5", "AU from testdata/delegated-test-extended-latest:7 range 1.0.0.0-1.0.2.255"},
		{"192.0.2.7", "CA from testdata/zones (testdata/zones/ca-aggregated.zone:2) network 192.0.2.7/32"},
		{"::ffff:3.0.0.1", "US from testdata/zones (testdata/zones/us.zone:2) network 3.0.0.0/15"},
	}
	for _, tt := range tests {
		p, ok := m.Explain(netip.MustParseAddr(tt.addr))
		if !ok || p.String() != tt.want {
			t.Errorf("Explain(%s) = %q, %v; want %q", tt.addr, p, ok, tt.want)
		}
	}
	if _, ok := m.Explain(netip.MustParseAddr("9.9.9.9")); ok {
		t.Error("Explain of an address without data reported a source")
	}
	au, _ := m.Country("AU")
	if want := mustSet(t, "1.0.0.0/24\n1.0.2.0/24"); !au.Equal(want) {
		t.Errorf("merged AU = %v, want %v", au, want)
	}
}

func TestDiff(t *testing.T) {
	old, err := csvRead("1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.255,NZ\n")
	if err != nil {
		t.Fatal(err)
	}
	new, err := csvRead("1.0.0.0,1.0.0.127,AU\n1.0.0.128,1.0.1.255,NZ\n2001:db8::,2001:db8::ffff,FR\n")
	if err != nil {
		t.Fatal(err)
	}
	got := Diff(old, new)
	want := []struct{ cc, added, removed string }{
		{"AU", "", "1.0.0.128/25"},
		{"FR", "2001:db8::/112", ""},
		{"NZ", "1.0.0.128/25", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("Diff = %v", got)
	}
	for i, w := range want {
		g := got[i]
		if string(g.Country) != w.cc || !g.Added.Equal(mustSet(t, w.added)) || !g.Removed.Equal(mustSet(t, w.removed)) {
			t.Errorf("change %d = %v, want %+v", i, g, w)
		}
	}
	if d := Diff(old, old); len(d) != 0 {
		t.Errorf("Diff(old, old) = %v", d)
	}
}

func TestCancel(t *testing.T) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	var b strings.Builder
	for i := 0; i < progressEvery+10; i++ {
		b.WriteString("1.0.0.0,1.0.0.0,AU\n")
	}
	_, err := ReadCSV(c, "t", strings.NewReader(b.String()), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled load: %v", err)
	}
}

func TestCountryTable(t *testing.T) {
	tests := []struct {
		c               Country
		known           bool
		name, continent string
	}{
		{"US", true, "United States", NorthAmerica},
		{"GB", true, "United Kingdom", Europe},
		{"NZ", true, "New Zealand", Oceania},
		{"XK", true, "Kosovo", Europe},
		{"AQ", true, "Antarctica", Antarctica},
		{"EU", false, "", ""},
		{"us", false, "", ""},
	}
	for _, tt := range tests {
		if tt.c.Known() != tt.known || tt.c.Name() != tt.name || tt.c.Continent() != tt.continent {
			t.Errorf("%s: %v %q %q", tt.c, tt.c.Known(), tt.c.Name(), tt.c.Continent())
		}
	}
	if len(isoTable) != 250 {
		t.Errorf("%d ISO entries, want 249 + XK", len(isoTable))
	}
}
