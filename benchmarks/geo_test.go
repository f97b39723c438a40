package benchmarks

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/geo"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
	"go4.org/netipx"
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
			enumerate(b, path)
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

// BenchmarkGeoRatio times geo against the floor in pairs, back to back in
// each iteration (alternating which goes first), so that the load of a
// shared machine falls on both alike; x-floor is the ratio of the summed
// times.
func BenchmarkGeoRatio(b *testing.B) {
	path := dataset.Path(b)
	ctx := context.Background()
	floor := func(b *testing.B) { enumerate(b, path) }
	all := func(b *testing.B) {
		db, err := geo.LoadMMDB(ctx, path, nil)
		if err != nil {
			b.Fatal(err)
		}
		if sets := db.Sets(); len(sets) < 200 {
			b.Fatal("too few countries", len(sets))
		}
	}
	six := func(b *testing.B) {
		db, err := geo.LoadMMDB(ctx, path, &geo.Options{Countries: dataset.Six})
		if err != nil {
			b.Fatal(err)
		}
		if s, err := db.Group(dataset.Six...); err != nil || s.IsEmpty() {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		geo  func(*testing.B)
	}{{"all", all}, {"six", six}} {
		b.Run(c.name, func(b *testing.B) {
			var tf, tg time.Duration
			i := 0
			for b.Loop() {
				for k := range 2 {
					t0 := time.Now()
					if (i+k)%2 == 0 {
						floor(b)
						tf += time.Since(t0)
					} else {
						c.geo(b)
						tg += time.Since(t0)
					}
				}
				i++
			}
			b.ReportMetric(float64(tg)/float64(tf), "x-floor")
			b.ReportMetric(float64(tf.Milliseconds())/float64(i), "floor-ms")
			b.ReportMetric(float64(tg.Milliseconds())/float64(i), "geo-ms")
		})
	}
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

var layoutsDir = flag.String("geo.layouts", "", "write TestGeoTreeLayouts' databases, smaller, into `dir` (geo/testdata/layouts)")

// TestGeoTreeLayouts checks geo's own search tree walk against
// maxminddb-golang on databases written by MaxMind's writer in every
// layout: IPv4 and IPv6 trees, 24-, 28- and 32-bit records, with and
// without the IPv4 aliases. Every network the library reports must load
// with its country and be Explain's network for its first and last
// address. (geo's internal tests compare the walk itself network for
// network, on these databases too: with -geo.layouts ../geo/testdata/layouts
// this test writes smaller ones there.)
func TestGeoTreeLayouts(t *testing.T) {
	ccs := []string{"US", "CA", "GB", "AU", "NZ", "IE", "DE", "FR", "JP", "BR"}
	for _, ipv := range []int{4, 6} {
		for _, rs := range []int{24, 28, 32} {
			for _, alias := range []bool{false, true} {
				if ipv == 4 && alias {
					continue
				}
				name := fmt.Sprintf("ipv%d-%dbit", ipv, rs)
				if alias {
					name += "-aliased"
				}
				t.Run(name, func(t *testing.T) {
					tree, err := mmdbwriter.New(mmdbwriter.Options{
						DatabaseType:            "geo-layout-test",
						IPVersion:               ipv,
						RecordSize:              rs,
						DisableIPv4Aliasing:     !alias,
						IncludeReservedNetworks: true,
					})
					if err != nil {
						t.Fatal(err)
					}
					rnd := rand.New(rand.NewPCG(uint64(ipv), uint64(rs)))
					count := 3000
					if *layoutsDir != "" {
						count = 40 // small fixtures
					}
					for range count {
						var p netip.Prefix
						if ipv == 4 || rnd.IntN(2) == 0 {
							p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + rnd.IntN(222)), byte(rnd.Uint32()), byte(rnd.Uint32()), byte(rnd.Uint32())}), 8+rnd.IntN(25)).Masked()
						} else {
							var a [16]byte
							for i := range a {
								a[i] = byte(rnd.Uint32())
							}
							a[0] = 0x20 | a[0]&0x1f
							bits := 16 + rnd.IntN(49)
							if rnd.IntN(8) == 0 {
								bits = 65 + rnd.IntN(64) // below the /64: the low word's bits
							}
							p = netip.PrefixFrom(netip.AddrFrom16(a), bits).Masked()
						}
						ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
						if err := tree.Insert(ipn, mmdbtype.Map{"country_code": mmdbtype.String(ccs[rnd.IntN(len(ccs))])}); err != nil {
							t.Fatal(err)
						}
					}
					var buf bytes.Buffer
					if _, err := tree.WriteTo(&buf); err != nil {
						t.Fatal(err)
					}
					if *layoutsDir != "" {
						if err := os.WriteFile(filepath.Join(*layoutsDir, name+".mmdb"), buf.Bytes(), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					db, err := geo.LoadMMDBBytes(context.Background(), name, buf.Bytes(), nil)
					if err != nil {
						t.Fatal(err)
					}
					r, err := maxminddb.OpenBytes(buf.Bytes())
					if err != nil {
						t.Fatal(err)
					}
					n := 0
					for res := range r.Networks() {
						var cc string
						if err := res.DecodePath(&cc, "country_code"); err != nil {
							t.Fatal(err)
						}
						p := res.Prefix()
						n++
						for _, a := range []netip.Addr{p.Addr(), netipx.PrefixLastIP(p)} {
							got, ok := db.Lookup(a)
							if !ok || string(got) != cc {
								t.Fatalf("Lookup(%s) = %q, %v; maxminddb %q (network %s)", a, got, ok, cc, p)
							}
							pv, _ := db.Explain(a)
							if pfx, ok := pv.Network.Prefix(); !ok || pfx != p {
								t.Fatalf("Explain(%s).Network = %v, want %v", a, pv.Network, p)
							}
						}
					}
					if got := db.Info().Networks; got != n {
						t.Errorf("geo loaded %d networks, maxminddb has %d", got, n)
					}
				})
			}
		}
	}
}

// enumerate is the floor: open the file and count its networks with
// maxminddb-golang's Reader.Networks.
func enumerate(b *testing.B, path string) {
	r, err := maxminddb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	n := 0
	for res := range r.Networks() {
		if res.Err() != nil {
			b.Fatal(res.Err())
		}
		n++
	}
	if n == 0 {
		b.Fatal("no networks")
	}
}
