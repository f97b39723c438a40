package benchmarks

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gaissmai/bart"
	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/cidr"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/yl2chen/cidranger"
	"go4.org/netipx"
)

// Lookup: address → country (a labelled table) and address → in the six
// countries or not (a membership set), built from the same networks of the
// shared database, queried with four address streams.

// streamLen is the number of addresses of each benchmark stream: enough
// that the lookups spread over the whole structure, few enough (1.5 MiB of
// netip.Addr) that reading the stream, sequentially, costs little next to a
// lookup.
const streamLen = 1 << 16

var streamNames = []string{"v4uniform", "v4intable", "v6uniform", "v6intable"}

// lookupData is everything built once per process.
type lookupData struct {
	countries []string                // label → country code
	streams   map[string][]netip.Addr // streamLen addresses each
	db        *maxminddb.Reader

	table  *cidr.Table
	bartT  *bart.Table[uint16]
	bartF  *bart.Fast[uint16]
	six    cidr.Set // the six countries, not compiled
	sixC   cidr.Set // compiled
	lite   *bart.Lite
	ipset  *netipx.IPSet
	ranger cidranger.Ranger
	builds map[string]buildCost

	six4and6 []netip.Prefix // the six countries' networks
}

type buildCost struct {
	heap uint64
	dur  time.Duration
}

var (
	lookupOnce sync.Once
	lookupD    *lookupData
	rangerOnce sync.Once
)

// measure runs build once and returns its result, the live heap it added
// (after garbage collection on both sides) and its duration.
func measure[T any](build func() T) (T, buildCost) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	x := build()
	d := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(x)
	return x, buildCost{m1.HeapAlloc - m0.HeapAlloc, d}
}

// streams returns the four address streams:
//
//	v4uniform: uniform random IPv4
//	v4intable: a random IPv4 network of the database, a random address in it
//	v6uniform: uniform random IPv6 in 2000::/3
//	v6intable: a random IPv6 network of the database, a random address in it
func streams(nets []dataset.Network, seed uint64, n int) map[string][]netip.Addr {
	rnd := rand.New(rand.NewPCG(seed, 42))
	var n4, n6 []netip.Prefix
	for _, n := range nets {
		if n.Prefix.Addr().Is4() {
			n4 = append(n4, n.Prefix)
		} else {
			n6 = append(n6, n.Prefix)
		}
	}
	inside := func(p netip.Prefix) netip.Addr {
		a := p.Addr().AsSlice()
		for i := p.Bits(); i < len(a)*8; i++ {
			a[i/8] ^= byte(rnd.IntN(2)) << (7 - i%8)
		}
		r, _ := netip.AddrFromSlice(a)
		return r
	}
	out := map[string][]netip.Addr{}
	for _, name := range streamNames {
		s := make([]netip.Addr, n)
		for i := range s {
			switch name {
			case "v4uniform":
				v := rnd.Uint32()
				s[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			case "v4intable":
				s[i] = inside(n4[rnd.IntN(len(n4))])
			case "v6uniform":
				var b [16]byte
				for j := range b {
					b[j] = byte(rnd.Uint32())
				}
				b[0] = 0x20 | b[0]&0x1f
				s[i] = netip.AddrFrom16(b)
			case "v6intable":
				s[i] = inside(n6[rnd.IntN(len(n6))])
			}
		}
		out[name] = s
	}
	return out
}

func loadLookup(tb testing.TB) *lookupData {
	nets := dataset.Networks(tb)
	path := dataset.Path(tb)
	lookupOnce.Do(func() {
		d := &lookupData{builds: map[string]buildCost{}}
		idx := map[string]uint16{}
		for _, n := range nets {
			if _, ok := idx[n.Country]; !ok {
				idx[n.Country] = 0
				d.countries = append(d.countries, n.Country)
			}
		}
		slices.Sort(d.countries)
		for i, c := range d.countries {
			idx[c] = uint16(i)
		}
		labels := make([]uint16, len(nets))
		for i, n := range nets {
			labels[i] = idx[n.Country]
		}
		six := slices.Concat(dataset.Select(nets, 4, dataset.Six...), dataset.Select(nets, 6, dataset.Six...))

		var c buildCost
		d.table, c = measure(func() *cidr.Table {
			var b cidr.TableBuilder
			for i, n := range nets {
				b.AddPrefix(n.Prefix, labels[i])
			}
			t, err := b.Table()
			if err != nil {
				panic(err)
			}
			return t
		})
		d.builds["geosteer.Table"] = c
		d.bartT, c = measure(func() *bart.Table[uint16] {
			t := new(bart.Table[uint16])
			for i, n := range nets {
				t.Insert(n.Prefix, labels[i])
			}
			return t
		})
		d.builds["bart.Table"] = c
		d.bartF, c = measure(func() *bart.Fast[uint16] {
			t := new(bart.Fast[uint16])
			for i, n := range nets {
				t.Insert(n.Prefix, labels[i])
			}
			return t
		})
		d.builds["bart.Fast"] = c

		d.six, c = measure(func() cidr.Set {
			var b cidr.Builder
			for _, p := range six {
				b.AddPrefix(p)
			}
			s, _ := b.Set()
			return s
		})
		d.builds["geosteer.Set"] = c
		d.sixC, c = measure(func() cidr.Set {
			var b cidr.Builder
			for _, p := range six {
				b.AddPrefix(p)
			}
			s, _ := b.Set()
			return s.Compile()
		})
		d.builds["geosteer.Set.Compile"] = c
		d.lite, c = measure(func() *bart.Lite {
			t := new(bart.Lite)
			for _, p := range six {
				t.Insert(p)
			}
			return t
		})
		d.builds["bart.Lite"] = c
		d.ipset, c = measure(func() *netipx.IPSet {
			var b netipx.IPSetBuilder
			for _, p := range six {
				b.AddPrefix(p)
			}
			s, _ := b.IPSet()
			return s
		})
		d.builds["netipx.IPSet"] = c

		db, err := maxminddb.Open(path)
		if err != nil {
			panic(err)
		}
		d.db = db
		d.streams = streams(nets, 1, streamLen)
		d.six4and6 = six
		lookupD = d
	})
	if lookupD == nil {
		tb.Fatal("lookup data failed to load")
	}
	return lookupD
}

// labelledRange is a network of the database as a range, with its label.
type labelledRange struct {
	r     netipx.IPRange
	label uint16
}

// sortedRanges returns the networks as ranges in address order, IPv4 first,
// as a walk over the database yields them.
func sortedRanges(nets []dataset.Network, labels []uint16) []labelledRange {
	out := make([]labelledRange, len(nets))
	for i, n := range nets {
		out[i] = labelledRange{netipx.RangeOfPrefix(n.Prefix), labels[i]}
	}
	slices.SortFunc(out, func(x, y labelledRange) int {
		if c := cmp.Compare(x.r.From().BitLen(), y.r.From().BitLen()); c != 0 {
			return c
		}
		return x.r.From().Compare(y.r.From())
	})
	return out
}

// appendTable builds a Table from sorted ranges with a TableAppender.
func appendTable(rs []labelledRange) *cidr.Table {
	var ta cidr.TableAppender
	for _, r := range rs {
		ta.Append(r.r.From(), r.r.To(), r.label)
	}
	t, err := ta.Table()
	if err != nil {
		panic(err)
	}
	return t
}

// loadRanger builds cidranger, which takes seconds, only for the tests and
// benchmarks that use it.
func loadRanger(tb testing.TB) *lookupData {
	d := loadLookup(tb)
	rangerOnce.Do(func() {
		six := d.six4and6
		var c buildCost
		d.ranger, c = measure(func() cidranger.Ranger {
			r := cidranger.NewPCTrieRanger()
			for _, p := range six {
				n := netipx.PrefixIPNet(p)
				if err := r.Insert(cidranger.NewBasicRangerEntry(*n)); err != nil {
					panic(err)
				}
			}
			return r
		})
		d.builds["cidranger"] = c
	})
	return d
}

func (d *lookupData) mmdbCountry(a netip.Addr) (string, bool) {
	var cc string
	res := d.db.Lookup(a)
	if !res.Found() {
		return "", false
	}
	if err := res.DecodePath(&cc, "country_code"); err != nil {
		panic(err)
	}
	return cc, true
}

// inAliases reports whether a is in a part of the IPv6 space that a MaxMind
// database aliases to its IPv4 tree (Teredo 2001::/32, 6to4 2002::/16): the
// database answers there, but its network list, and so every structure
// built from it, does not.
var aliases = []netip.Prefix{netip.MustParsePrefix("2001::/32"), netip.MustParsePrefix("2002::/16")}

func inAliases(a netip.Addr) bool {
	for _, p := range aliases {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TestLookupAgrees checks every structure against the database itself on
// 1,000,000 random addresses, 250,000 of each stream.
func TestLookupAgrees(t *testing.T) {
	d := loadRanger(t)
	nets := dataset.Networks(t)
	labels := make([]uint16, len(nets))
	for i, n := range nets {
		j, _ := slices.BinarySearch(d.countries, n.Country)
		labels[i] = uint16(j)
	}
	appended := appendTable(sortedRanges(nets, labels))
	str := streams(dataset.Networks(t), 2, 250_000)
	n, skipped := 0, 0
	for _, name := range streamNames {
		for _, a := range str[name] {
			n++
			want, found := d.mmdbCountry(a)
			if inAliases(a) {
				skipped++
				continue
			}
			wantSix := found && slices.Contains(dataset.Six, want)
			check := func(what string, l uint16, ok bool) {
				t.Helper()
				got := ""
				if ok {
					got = d.countries[l]
				}
				if ok != found || got != want {
					t.Fatalf("%s: %s gives %q, %v; the database %q, %v", name, what, got, ok, want, found)
				}
			}
			l, ok := d.table.Lookup(a)
			check("geosteer.Table", l, ok)
			l, ok = appended.Lookup(a)
			check("geosteer.TableAppender", l, ok)
			l, ok = d.bartT.Lookup(a)
			check("bart.Table", l, ok)
			l, ok = d.bartF.Lookup(a)
			check("bart.Fast", l, ok)
			checkSet := func(what string, got bool) {
				t.Helper()
				if got != wantSix {
					t.Fatalf("%s: %s.Contains(%v) = %v, want %v (%q)", name, what, a, got, wantSix, want)
				}
			}
			checkSet("geosteer.Set", d.six.Contains(a))
			checkSet("geosteer.Set.Compile", d.sixC.Contains(a))
			checkSet("bart.Lite", d.lite.Contains(a))
			checkSet("netipx.IPSet", d.ipset.Contains(a))
			in, err := d.ranger.Contains(net.IP(a.AsSlice()))
			if err != nil {
				t.Fatal(err)
			}
			checkSet("cidranger", in)
		}
	}
	t.Logf("%d addresses agree; %d more in the database's IPv4 aliases (Teredo, 6to4) not compared", n-skipped, skipped)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range d.builds {
			if !yield(k) {
				return
			}
		}
	}) {
		c := d.builds[name]
		t.Logf("%-22s heap %6.1f MiB, build %v", name, float64(c.heap)/(1<<20), c.dur.Round(time.Millisecond))
	}
}

// The lookup benchmarks time one lookup per iteration over a stream of
// streamLen precomputed addresses, indexed by i&(streamLen-1). The lookups
// are independent of each other (no address waits for an earlier answer),
// as a server's are, so the processor overlaps their cache misses: ns/op is
// the on-CPU cost of one independent lookup on one core, as in
// ../shared/notes/anchors.md. Every structure runs the same loop, written
// out for each (lookupLoop, containsLoop) so that its method is called
// directly, as a user calls it, and inlined where the compiler inlines it;
// a call through a func value would add the same indirect call to every
// structure and hide that difference. The answers are summed into a sink
// so that the compiler cannot drop the work.

const streamMask = streamLen - 1

var sink uint

// b2u is 1 for true, without a branch.
func b2u(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// timeLoop runs loop and reports, besides the wall time per lookup
// (ns/op), the CPU time per lookup of the thread that ran it (cpu-ns/op):
// on a shared machine the first counts the time other processes hold the
// core, the second does not.
func timeLoop(b *testing.B, addrs []netip.Addr, loop func(*testing.B, []netip.Addr) uint) {
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok0 := threadCPU()
	sink += loop(b, addrs)
	c1, ok1 := threadCPU()
	if ok0 && ok1 && b.N > 0 {
		b.ReportMetric(float64(c1-c0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkLookup measures address → country.
func BenchmarkLookup(b *testing.B) {
	d := loadLookup(b)
	impls := []struct {
		name string
		loop func(b *testing.B, addrs []netip.Addr) uint
	}{
		{"geosteer.Table", func(b *testing.B, addrs []netip.Addr) uint {
			t := d.table
			var sum uint
			for i := 0; i < b.N; i++ {
				l, ok := t.Lookup(addrs[i&streamMask])
				sum += uint(l) + b2u(ok)
			}
			return sum
		}},
		{"loop-floor", func(b *testing.B, addrs []netip.Addr) uint {
			var sum uint
			for i := 0; i < b.N; i++ {
				sum += uint(addrs[i&streamMask].BitLen())
			}
			return sum
		}},
		{"bart.Table", func(b *testing.B, addrs []netip.Addr) uint {
			t := d.bartT
			var sum uint
			for i := 0; i < b.N; i++ {
				l, ok := t.Lookup(addrs[i&streamMask])
				sum += uint(l) + b2u(ok)
			}
			return sum
		}},
		{"bart.Fast", func(b *testing.B, addrs []netip.Addr) uint {
			t := d.bartF
			var sum uint
			for i := 0; i < b.N; i++ {
				l, ok := t.Lookup(addrs[i&streamMask])
				sum += uint(l) + b2u(ok)
			}
			return sum
		}},
		{"mmdb", func(b *testing.B, addrs []netip.Addr) uint {
			db := d.db
			var sum uint
			for i := 0; i < b.N; i++ {
				var cc string
				err := db.Lookup(addrs[i&streamMask]).DecodePath(&cc, "country_code")
				sum += uint(len(cc)) + b2u(err == nil)
			}
			return sum
		}},
	}
	for _, s := range streamNames {
		addrs := d.streams[s]
		for _, im := range impls {
			b.Run(fmt.Sprintf("stream=%s/impl=%s", s, im.name), func(b *testing.B) {
				timeLoop(b, addrs, im.loop)
			})
		}
	}
}

// BenchmarkContains measures membership in the six countries.
func BenchmarkContains(b *testing.B) {
	d := loadLookup(b)
	impls := []struct {
		name string
		loop func(b *testing.B, addrs []netip.Addr) uint
	}{
		{"geosteer.Set.Compile", func(b *testing.B, addrs []netip.Addr) uint {
			s := d.sixC
			var sum uint
			for i := 0; i < b.N; i++ {
				sum += b2u(s.Contains(addrs[i&streamMask]))
			}
			return sum
		}},
		{"geosteer.Set", func(b *testing.B, addrs []netip.Addr) uint {
			s := d.six
			var sum uint
			for i := 0; i < b.N; i++ {
				sum += b2u(s.Contains(addrs[i&streamMask]))
			}
			return sum
		}},
		{"bart.Lite", func(b *testing.B, addrs []netip.Addr) uint {
			s := d.lite
			var sum uint
			for i := 0; i < b.N; i++ {
				sum += b2u(s.Contains(addrs[i&streamMask]))
			}
			return sum
		}},
		{"netipx.IPSet", func(b *testing.B, addrs []netip.Addr) uint {
			s := d.ipset
			var sum uint
			for i := 0; i < b.N; i++ {
				sum += b2u(s.Contains(addrs[i&streamMask]))
			}
			return sum
		}},
		{"cidranger", func(b *testing.B, addrs []netip.Addr) uint {
			s := d.ranger // built before timeLoop: see below
			var sum uint
			for i := 0; i < b.N; i++ {
				in, _ := s.Contains(net.IP(addrs[i&streamMask].AsSlice()))
				sum += b2u(in)
			}
			return sum
		}},
	}
	for _, s := range streamNames {
		addrs := d.streams[s]
		for _, im := range impls {
			b.Run(fmt.Sprintf("stream=%s/impl=%s", s, im.name), func(b *testing.B) {
				if im.name == "cidranger" {
					loadRanger(b) // seconds, on first use only
					b.ResetTimer()
				}
				timeLoop(b, addrs, im.loop)
			})
		}
	}
}

// BenchmarkBuild measures building each structure from the network list,
// and reports the live heap of the built structure as heap-MiB.
func BenchmarkBuild(b *testing.B) {
	d := loadLookup(b)
	nets := dataset.Networks(b)
	labels := make([]uint16, len(nets))
	for i, n := range nets {
		j, _ := slices.BinarySearch(d.countries, n.Country)
		labels[i] = uint16(j)
	}
	six := slices.Concat(dataset.Select(nets, 4, dataset.Six...), dataset.Select(nets, 6, dataset.Six...))
	sorted := sortedRanges(nets, labels)
	builds := []struct {
		name string
		fn   func() any
	}{
		{"geosteer.Table", func() any {
			var tb cidr.TableBuilder
			for i, n := range nets {
				tb.AddPrefix(n.Prefix, labels[i])
			}
			t, _ := tb.Table()
			return t
		}},
		{"geosteer.TableAppender", func() any {
			return appendTable(sorted)
		}},
		{"bart.Table", func() any {
			t := new(bart.Table[uint16])
			for i, n := range nets {
				t.Insert(n.Prefix, labels[i])
			}
			return t
		}},
		{"bart.Fast", func() any {
			t := new(bart.Fast[uint16])
			for i, n := range nets {
				t.Insert(n.Prefix, labels[i])
			}
			return t
		}},
		{"geosteer.Set.Compile", func() any {
			var sb cidr.Builder
			for _, p := range six {
				sb.AddPrefix(p)
			}
			s, _ := sb.Set()
			return s.Compile()
		}},
		{"bart.Lite", func() any {
			t := new(bart.Lite)
			for _, p := range six {
				t.Insert(p)
			}
			return t
		}},
		{"netipx.IPSet", func() any {
			var sb netipx.IPSetBuilder
			for _, p := range six {
				sb.AddPrefix(p)
			}
			s, _ := sb.IPSet()
			return s
		}},
	}
	for _, bd := range builds {
		b.Run("impl="+bd.name, func(b *testing.B) {
			b.ReportAllocs()
			_, c := measure(bd.fn)
			for b.Loop() {
				bd.fn()
			}
			b.ReportMetric(float64(c.heap)/(1<<20), "heap-MiB")
		})
	}
	// cidranger takes seconds to build: report the build made once for the
	// lookups instead of building it again.
	b.Run("impl=cidranger", func(b *testing.B) {
		c := loadRanger(b).builds["cidranger"]
		for b.Loop() {
		}
		b.ReportMetric(float64(c.dur.Nanoseconds()), "build-ns")
		b.ReportMetric(float64(c.heap)/(1<<20), "heap-MiB")
	})
}
