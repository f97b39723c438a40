package benchmarks

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros"
	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	rosapi "github.com/go-routeros/routeros/v3"
	"go4.org/netipx"
)

// RouterOS sync against the simulator with 1 ms round-trip latency.

const rosLatency = time.Millisecond

// rosSet returns n disjoint, non-adjacent IPv4 /32s (n list entries),
// every 4th address from 11.0.0.0, with every k-th one moved by one
// address when shift is set (a change of n/k entries... added and removed).
func rosSet(n, changeEvery int, salt uint32) cidr.Set {
	var b cidr.Builder
	base := uint32(11 << 24)
	for i := range n {
		a := base + uint32(i)*4
		if changeEvery > 0 && i%changeEvery == 0 {
			a += 1 + salt%2 // same count, different address
		}
		b.Add(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}))
	}
	s, _ := b.Set()
	return s
}

func rosPlan(english cidr.Set) *steer.Plan {
	mx1, mx2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	a, bb, f := netip.MustParseAddrPort("10.0.0.1:25"), netip.MustParseAddrPort("10.0.0.2:25"), netip.MustParseAddrPort("10.0.0.3:25")
	lower := netipx.MustParseIPRange("0.0.0.0-127.255.255.255")
	upper := netipx.MustParseIPRange("128.0.0.0-255.255.255.255")
	rules := []steer.Rule{
		{Name: "foreign-mx1", Family: 4, DstAddr: mx1, DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: f},
		{Name: "foreign-mx2", Family: 4, DstAddr: mx2, DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: f},
		{Name: "split-mx1-0", Family: 4, DstAddr: mx1, DstPort: 25, Src: lower, Target: "a", To: a},
		{Name: "split-mx1-1", Family: 4, DstAddr: mx1, DstPort: 25, Src: upper, Target: "b", To: bb},
		{Name: "split-mx2-0", Family: 4, DstAddr: mx2, DstPort: 25, Src: lower, Target: "b", To: bb},
		{Name: "split-mx2-1", Family: 4, DstAddr: mx2, DstPort: 25, Src: upper, Target: "a", To: a},
	}
	if !english.IPv6().IsEmpty() {
		mx6 := netip.MustParseAddr("2001:db8:25::1")
		rules = append(rules, steer.Rule{Name: "foreign-mx6", Family: 6, DstAddr: mx6, DstPort: 25, SrcSet: "english", SrcSetNot: true,
			Target: "foreign", To: netip.MustParseAddrPort("[2001:db8::3]:25")})
	}
	return &steer.Plan{Sets: []steer.Set{{Name: "english", Addrs: english}}, Rules: rules}
}

func rosServer(b *testing.B) *routerostest.Server {
	srv, err := routerostest.NewServer(routerostest.Options{Latency: rosLatency})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

func rosApply(b *testing.B, r *routeros.Router, p *steer.Plan) backend.Report {
	rep, err := r.Apply(context.Background(), p, backend.ApplyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return rep
}

func quietRouter(addr string, mode routeros.Mode) *routeros.Router {
	return &routeros.Router{Addr: addr, User: "admin", Mode: mode, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// BenchmarkRouterOSInitial: an empty router to the full plan. "pipelined"
// is routeros.Router (diff, window of 256, verify by read-back);
// "one-per-rtt" is what existing tools do: go-routeros' sync client, one
// add per round trip, no read-back.
func BenchmarkRouterOSInitial(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		p := rosPlan(rosSet(n, 0, 0))
		b.Run("pipelined/"+strconv.Itoa(n), func(b *testing.B) {
			var cmds int64
			for b.Loop() {
				b.StopTimer()
				srv := rosServer(b)
				b.StartTimer()
				rosApply(b, quietRouter(srv.Addr(), routeros.BlueGreen), p)
				b.StopTimer()
				cmds = srv.Stats().Commands
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds), "commands/op")
		})
		if n > 10_000 && os.Getenv("ROUTEROS_BASELINE_100K") == "" {
			continue // ~2 minutes per run: set ROUTEROS_BASELINE_100K=1 to measure it
		}
		b.Run("one-per-rtt/"+strconv.Itoa(n), func(b *testing.B) {
			entries := p.Sets[0].Addrs.Ranges()
			var cmds int64
			for b.Loop() {
				b.StopTimer()
				srv := rosServer(b)
				b.StartTimer()
				nc, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
				if err != nil {
					b.Fatal(err)
				}
				nc.SetDeadline(time.Now().Add(10 * time.Minute))
				c, _ := rosapi.NewClient(nc)
				if err := c.Login("admin", ""); err != nil {
					b.Fatal(err)
				}
				for _, r := range entries {
					if _, err := c.Run("/ip/firewall/address-list/add", "=list=english", "=address="+r.From().String(), "=comment=geosteer"); err != nil {
						b.Fatal(err)
					}
				}
				c.Close()
				b.StopTimer()
				cmds = srv.Stats().Commands
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds), "commands/op")
		})
	}
}

// BenchmarkRouterOSIncremental: a router holding the 100k plan (and, for
// standby, its standby generation) syncs a plan with 1% of the entries
// replaced (1,000 removed, 1,000 added).
func BenchmarkRouterOSIncremental(b *testing.B) {
	const n = 100_000
	p0, p1, p2 := rosPlan(rosSet(n, 0, 0)), rosPlan(rosSet(n, 100, 0)), rosPlan(rosSet(n, 100, 1))
	for _, mode := range []routeros.Mode{routeros.InPlace, routeros.Standby, routeros.BlueGreen} {
		b.Run(mode.String(), func(b *testing.B) {
			var cmds int64
			var rep backend.Report
			for b.Loop() {
				b.StopTimer()
				srv := rosServer(b)
				r := quietRouter(srv.Addr(), mode)
				rosApply(b, r, p0)
				rosApply(b, r, p1)
				before := srv.Stats().Commands
				b.StartTimer()
				rep = rosApply(b, r, p2)
				b.StopTimer()
				cmds = srv.Stats().Commands - before
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds), "commands/op")
			b.ReportMetric(float64(rep.ElementsAdded+rep.ElementsRemoved), "entries/op")
		})
	}
}

// BenchmarkRouterOSSeed: the seed policy from the shared database (the six
// "english" countries, IPv4 ranges and IPv6 prefixes) onto an empty router.
func BenchmarkRouterOSSeed(b *testing.B) {
	nets := dataset.Networks(b)
	var bl cidr.Builder
	for _, fam := range []int{4, 6} {
		for _, pf := range dataset.Select(nets, fam, dataset.Six...) {
			bl.AddPrefix(pf)
		}
	}
	english, _ := bl.Set()
	p := rosPlan(english)
	b.Logf("english: %d IPv4 ranges, %d IPv6 prefixes", english.IPv4().NumRanges(), english.IPv6().NumPrefixes())
	var cmds int64
	for b.Loop() {
		b.StopTimer()
		srv := rosServer(b)
		b.StartTimer()
		rosApply(b, quietRouter(srv.Addr(), routeros.BlueGreen), p)
		b.StopTimer()
		cmds = srv.Stats().Commands
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cmds), "commands/op")
}
