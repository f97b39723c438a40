package geo

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/geosteer/geosteer/internal/testenv"
)

// searchLookup is Lookup by binary search of the DB's own table: the
// reference the compiled table must agree with.
func searchLookup(db *DB, a netip.Addr) (Country, bool) {
	o := &db.origins[db.label(a)]
	return o.cc, o.cc != ""
}

// checkCompiled compares the compiled Lookup with the table search at both
// ends of every entry, and at random addresses, mapped ones included.
func checkCompiled(t *testing.T, db *DB) {
	t.Helper()
	var addrs []netip.Addr
	for i := range db.t4.len() {
		lo, hi, top := db.t4.bounds(i)
		if top {
			hi = ^u32(0)
		}
		addrs = append(addrs, lo.addr(), hi.addr())
	}
	for i := range db.t6.len() {
		lo, hi, top := db.t6.bounds(i)
		if top {
			hi = u128{^uint64(0), ^uint64(0)}
		}
		addrs = append(addrs, lo.addr(), hi.addr())
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		v := rnd.Uint32()
		a4 := u32(v).addr()
		addrs = append(addrs, a4, netip.AddrFrom16(a4.As16()), u128{rnd.Uint64(), rnd.Uint64()}.addr())
	}
	for _, a := range addrs {
		got, ok := db.Lookup(a)
		want, wok := searchLookup(db, a)
		if got != want || ok != wok {
			t.Fatalf("%s: Lookup(%s) = %q, %v; table search %q, %v", db.info.Name, a, got, ok, want, wok)
		}
	}
	if db.lut.tab == nil {
		t.Errorf("%s: no compiled table", db.info.Name)
	}
}

func TestCompiledLookup(t *testing.T) {
	sample, err := LoadMMDB(ctx, "testdata/sample.mmdb", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCompiled(t, sample)
	six, err := LoadMMDB(ctx, "testdata/sample.mmdb", &Options{Countries: []string{"us", "GB"}})
	if err != nil {
		t.Fatal(err)
	}
	checkCompiled(t, six)
	zones, err := LoadZoneDir(ctx, "testdata/zones", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCompiled(t, zones)
	m, err := Merge(zones, sample)
	if err != nil {
		t.Fatal(err)
	}
	checkCompiled(t, m)
	t.Run("shared", func(t *testing.T) {
		db, err := LoadMMDB(ctx, testenv.SharedFile(t, "geo-whois-asn-country.mmdb"), nil)
		if err != nil {
			t.Fatal(err)
		}
		checkCompiled(t, db)
	})
}

// TestCompiledLookupConcurrent: the first Lookups race to compile; run
// with -race.
func TestCompiledLookupConcurrent(t *testing.T) {
	db, err := LoadMMDB(ctx, "testdata/sample.mmdb", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("81.2.69.160")
	want, wok := searchLookup(db, a)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, ok := db.Lookup(a); got != want || ok != wok {
				t.Errorf("Lookup = %q, %v; want %q, %v", got, ok, want, wok)
			}
		})
	}
	wg.Wait()
}
