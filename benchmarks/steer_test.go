package benchmarks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/steer"
	"github.com/oschwald/maxminddb-golang/v2"
)

const seedPolicy = "../steer/testdata/seed.yaml"

var (
	seedOnce sync.Once
	seedDB   *geo.DB
	seedPlan *steer.Plan
	seedErr  error
)

// compiledSeed returns the shared database loaded by geo (as a user
// loads it) and the seed policy compiled from it.
func compiledSeed(tb testing.TB) (*geo.DB, *steer.Plan) {
	path := dataset.Path(tb)
	seedOnce.Do(func() {
		p, err := steer.LoadFile(seedPolicy)
		if err != nil {
			seedErr = err
			return
		}
		if seedDB, err = geo.LoadMMDB(context.Background(), path, nil); err != nil {
			seedErr = err
			return
		}
		seedPlan, seedErr = steer.Compile(p, steer.FromGeo(seedDB), nil)
	})
	if seedErr != nil {
		tb.Fatal(seedErr)
	}
	return seedDB, seedPlan
}

var (
	mx1   = netip.MustParseAddr("203.0.113.1")
	mx1v6 = netip.MustParseAddr("2001:db8::1")
)

// sources returns n random sources: uniform IPv4, or IPv6 uniform in
// 2000::/3 (global unicast, where the data is).
func sources(family, n int) []netip.Addr {
	rnd := rand.New(rand.NewPCG(42, uint64(family)))
	out := make([]netip.Addr, n)
	for i := range out {
		if family == 4 {
			v := rnd.Uint32()
			out[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			continue
		}
		var b [16]byte
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		b[0] = 0x20 | b[0]&0x1f
		out[i] = netip.AddrFrom16(b)
	}
	return out
}

// TestSteerSharedDB checks the compiled seed against the database itself:
// a source goes to the strict server exactly when the database does not
// put it in one of the six countries (nor an override in english), and
// the Router agrees with the plan.
func TestSteerSharedDB(t *testing.T) {
	_, plan := compiledSeed(t)
	rt, err := plan.Router()
	if err != nil {
		t.Fatal(err)
	}
	db, err := maxminddb.Open(dataset.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, _ := steer.LoadFile(seedPolicy)
	var overrides cidr.Builder
	for _, o := range p.Overrides {
		overrides.AddSet(o.Add)
	}
	ov, _ := overrides.Set()
	for _, fam := range []int{4, 6} {
		dst := mx1
		if fam == 6 {
			dst = mx1v6
		}
		foreign := 0
		for _, src := range sources(fam, 100000) {
			var cc string
			if err := db.Lookup(src).DecodePath(&cc, "country_code"); err != nil {
				t.Fatal(err)
			}
			want := !slices.Contains(dataset.Six, cc) && !ov.Contains(src)
			d := plan.Route(src, dst, 25)
			if got := d.Target() == "foreign"; got != want {
				t.Fatalf("%v (%q): routed to %s", src, cc, d.Target())
			}
			if want {
				foreign++
			}
			if rd := rt.Route(src, dst, 25); rd != d {
				t.Fatalf("%v: router %+v, plan %+v", src, rd, d)
			}
		}
		t.Logf("IPv%d: %d of 100000 random sources foreign", fam, foreign)
	}
	english, _ := plan.Set("english")
	c, cc := english.Counts(), english.ComplementCounts()
	t.Logf("english: %d/%d IPv4 ranges/prefixes, %d/%d IPv6; complement %d/%d IPv4, %d/%d IPv6",
		c.Ranges4, c.Prefixes4, c.Ranges6, c.Prefixes6, cc.Ranges4, cc.Prefixes4, cc.Ranges6, cc.Prefixes6)
}

// BenchmarkSteerRoute measures one routing decision on the seed policy:
// the compiled Router's Route (the Decision's rule index, and, in
// router-target, its target's name too, as a caller uses it), its Rule
// (the rule index alone) and an Entry's Rule (the destination
// resolved once, as a listener does), next to the reference Plan.Route,
// the bare cidr.Table lookup of the english set (a table of the same shape
// as the Router's, which has the english boundaries and the split's) and a
// maxminddb lookup of the country. Every implementation reads the same
// precomputed streams (lookup_test.go's: uniform, and in a random network
// of the database; no IPv4-mapped sources, so no one unmaps), and each
// loop is written out, so that what inlines inlines into it as into a
// caller's code and no closure call is counted; loop-floor measures
// reading the stream alone.
func BenchmarkSteerRoute(b *testing.B) {
	_, plan := compiledSeed(b)
	rt, err := plan.Router()
	if err != nil {
		b.Fatal(err)
	}
	english, _ := plan.Set("english")
	tab, err := cidr.TableOf(english.Addrs)
	if err != nil {
		b.Fatal(err)
	}
	db, err := maxminddb.Open(dataset.Path(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	all := streams(dataset.Networks(b), 1, streamLen)
	for _, s := range streamNames {
		addrs := all[s]
		const mask = streamLen - 1
		dst := mx1
		if addrs[0].Is6() {
			dst = mx1v6
		}
		impls := []struct {
			name string
			loop func(b *testing.B) int
		}{
			{"router", func(b *testing.B) (n int) {
				for i := 0; b.Loop(); i++ {
					n += rt.Route(addrs[i&mask], dst, 25).Rule()
				}
				return n
			}},
			{"router-target", func(b *testing.B) (n int) {
				for i := 0; b.Loop(); i++ {
					d := rt.Route(addrs[i&mask], dst, 25)
					n += d.Rule() + len(d.Target())
				}
				return n
			}},
			{"rule", func(b *testing.B) (n int) {
				for i := 0; b.Loop(); i++ {
					n += rt.Rule(addrs[i&mask], dst, 25)
				}
				return n
			}},
			{"entry", func(b *testing.B) (n int) {
				e := rt.Entry(dst, 25)
				for i := 0; b.Loop(); i++ {
					n += e.Rule(addrs[i&mask])
				}
				return n
			}},
			{"table", func(b *testing.B) (n int) {
				for i := 0; b.Loop(); i++ {
					l, _ := tab.Lookup(addrs[i&mask])
					n += int(l)
				}
				return n
			}},
			{"plan", func(b *testing.B) (n int) {
				for i := 0; b.Loop(); i++ {
					n += plan.Route(addrs[i&mask], dst, 25).Rule()
				}
				return n
			}},
			{"maxminddb", func(b *testing.B) (n int) {
				var cc string
				for i := 0; b.Loop(); i++ {
					if err := db.Lookup(addrs[i&mask]).DecodePath(&cc, "country_code"); err != nil {
						b.Fatal(err)
					}
					n += len(cc)
				}
				return n
			}},
			{"loop-floor", func(b *testing.B) (n int) {
				for i := 0; b.Loop(); i++ {
					n += addrs[i&mask].BitLen()
				}
				return n
			}},
		}
		for _, im := range impls {
			b.Run(fmt.Sprintf("stream=%s/impl=%s", s, im.name), func(b *testing.B) {
				b.ReportAllocs()
				onCPU(b, func() { steerSink = im.loop(b) })
			})
		}
	}
}

var steerSink int

// onCPU runs a benchmark's loop on a locked OS thread and reports the
// thread's CPU time per iteration as cpu-ns/op: on this shared machine the
// wall time (sec/op) includes waiting for a core, the CPU time does not.
func onCPU(b *testing.B, loop func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok0 := threadCPU() // lookup_cpu_*_test.go
	loop()
	if t1, ok1 := threadCPU(); ok0 && ok1 {
		b.ReportMetric(float64(t1-t0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkSteerCompile measures compiling the seed policy from the
// shared database loaded by geo.LoadMMDB (country sets built on request
// by geo.DB; loading is the geo section's), and building the Router from
// the plan.
func BenchmarkSteerCompile(b *testing.B) {
	db, plan := compiledSeed(b)
	data := steer.FromGeo(db)
	p, err := steer.LoadFile(seedPolicy)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("compile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := steer.Compile(p, data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("router", func(b *testing.B) {
		// The live heap of one Router, reported as heap-MiB.
		rt, c := measure(func() *steer.Router {
			rt, err := plan.Router()
			if err != nil {
				b.Fatal(err)
			}
			return rt
		})
		b.Logf("%v", rt)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := plan.Router(); err != nil {
				b.Fatal(err)
			}
		}
		// After the loop: b.Loop's timer reset clears the metrics.
		b.ReportMetric(float64(c.heap)/(1<<20), "heap-MiB")
	})
}
