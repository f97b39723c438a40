package benchmarks

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"

	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/geo"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Loading a country database: geo against the floor of enumerating the
// file's networks with maxminddb-golang.

func BenchmarkGeoLoad(b *testing.B) {
	path := dataset.Path(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	report := func(b *testing.B) {
		b.ReportMetric(float64(fi.Size()), "file-B")
	}
	b.Run("floor=Networks", func(b *testing.B) {
		for b.Loop() {
			r, err := maxminddb.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for res := range r.Networks() {
				if res.Err() != nil {
					b.Fatal(res.Err())
				}
				n++
			}
			r.Close()
			if n == 0 {
				b.Fatal("no networks")
			}
		}
		report(b)
	})
	b.Run("floor=Networks+Prefix+Offset", func(b *testing.B) {
		for b.Loop() {
			r, err := maxminddb.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			var sum uintptr
			for res := range r.Networks() {
				if res.Err() != nil {
					b.Fatal(res.Err())
				}
				sum += res.Offset() + uintptr(res.Prefix().Bits())
			}
			r.Close()
			if sum == 0 {
				b.Fatal("no networks")
			}
		}
		report(b)
	})
	b.Run("geo=all", func(b *testing.B) {
		for b.Loop() {
			db, err := geo.LoadMMDB(ctx, path, nil)
			if err != nil {
				b.Fatal(err)
			}
			if sets := db.Sets(); len(sets) < 200 {
				b.Fatal("too few countries", len(sets))
			}
		}
		report(b)
	})
	b.Run("geo=load", func(b *testing.B) {
		for b.Loop() {
			if _, err := geo.LoadMMDB(ctx, path, nil); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("geo=six", func(b *testing.B) {
		for b.Loop() {
			db, err := geo.LoadMMDB(ctx, path, &geo.Options{Countries: dataset.Six})
			if err != nil {
				b.Fatal(err)
			}
			s, err := db.Group(dataset.Six...)
			if err != nil || s.IsEmpty() {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// Lookups: the compiled country table against maxminddb's own lookup of the
// same addresses.

func lookupAddrs(b *testing.B, family int, inTable bool) []netip.Addr {
	nets := dataset.Networks(b)
	rnd := rand.New(rand.NewPCG(7, 7))
	out := make([]netip.Addr, 0, 1<<16)
	for len(out) < cap(out) {
		if inTable {
			n := nets[rnd.IntN(len(nets))]
			if n.Prefix.Addr().Is4() != (family == 4) {
				continue
			}
			a := n.Prefix.Addr().As16()
			if family == 4 {
				a4 := n.Prefix.Addr().As4()
				host := rnd.Uint32() & (1<<(32-n.Prefix.Bits()) - 1)
				v := (uint32(a4[0])<<24 | uint32(a4[1])<<16 | uint32(a4[2])<<8 | uint32(a4[3])) | host
				out = append(out, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
			} else {
				out = append(out, netip.AddrFrom16(a))
			}
			continue
		}
		if family == 4 {
			v := rnd.Uint32()
			out = append(out, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
		} else {
			var a [16]byte
			for i := range a {
				a[i] = byte(rnd.Uint32())
			}
			a[0] = 0x20 | a[0]&0x1f // 2000::/3
			out = append(out, netip.AddrFrom16(a))
		}
	}
	return out
}

func BenchmarkGeoLookup(b *testing.B) {
	path := dataset.Path(b)
	db, err := geo.LoadMMDB(context.Background(), path, nil)
	if err != nil {
		b.Fatal(err)
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	cases := []struct {
		name    string
		family  int
		inTable bool
	}{
		{"v4-uniform", 4, false}, {"v4-in-table", 4, true},
		{"v6-uniform", 6, false}, {"v6-in-table", 6, true},
	}
	for _, c := range cases {
		addrs := lookupAddrs(b, c.family, c.inTable)
		// Both must agree before either is timed.
		for _, a := range addrs[:4096] {
			var cc string
			if err := r.Lookup(a).DecodePath(&cc, "country_code"); err != nil {
				b.Fatal(err)
			}
			got, _ := db.Lookup(a)
			if string(got) != cc {
				b.Fatalf("%s: geo %q, maxminddb %q", a, got, cc)
			}
		}
		b.Run(c.name+"/geo", func(b *testing.B) {
			i, n := 0, 0
			for b.Loop() {
				if _, ok := db.Lookup(addrs[i&(len(addrs)-1)]); ok {
					n++
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
		b.Run(c.name+"/maxminddb", func(b *testing.B) {
			i := 0
			var cc string
			for b.Loop() {
				if err := r.Lookup(addrs[i&(len(addrs)-1)]).DecodePath(&cc, "country_code"); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}
