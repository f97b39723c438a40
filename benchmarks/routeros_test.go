package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// rosSim is the simulator in a process of its own (cmd/rossim), so the
// benchmark's memory figures are the client's alone.
type rosSim struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
}

var (
	rossimOnce sync.Once
	rossimBin  string
	rossimErr  error
)

func rosServer(b *testing.B) *rosSim {
	rossimOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rossim")
		if err != nil {
			rossimErr = err
			return
		}
		rossimBin = filepath.Join(dir, "rossim")
		out, err := exec.Command("go", "build", "-o", rossimBin, "./cmd/rossim").CombinedOutput()
		if err != nil {
			rossimErr = fmt.Errorf("go build ./cmd/rossim: %v\n%s", err, out)
		}
	})
	if rossimErr != nil {
		b.Fatal(rossimErr)
	}
	s := &rosSim{cmd: exec.Command(rossimBin, "-latency", rosLatency.String())}
	s.cmd.Stderr = os.Stderr
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s.out = bufio.NewReader(stdout)
	line, err := s.out.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	s.addr = strings.TrimSpace(line)
	return s
}

func (s *rosSim) Addr() string { return s.addr }

func (s *rosSim) Stats(b *testing.B) routerostest.Stats {
	var st routerostest.Stats
	if _, err := io.WriteString(s.in, "stats\n"); err != nil {
		b.Fatal(err)
	}
	line, err := s.out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &st)
	}
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func (s *rosSim) Close() {
	s.in.Close()
	s.cmd.Wait()
}

func rosApply(b *testing.B, r *routeros.Router, p *steer.Plan) backend.Report {
	rep, err := r.Apply(context.Background(), p, backend.ApplyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return rep
}

func quietRouter(addr string, mode routeros.Mode) *routeros.Router {
	return &routeros.Router{Addr: addr, User: "admin", Mode: mode, Logger: slog.New(slog.DiscardHandler)}
}

// heapMeter measures the client's heap around one operation: the peak of
// heap objects sampled every 2 ms during it, above the live heap before
// it (garbage included, so it follows the GC's pacing), and what the
// Router keeps afterwards (the live heap with the Router reachable minus
// without it; the plans stay reachable throughout).
type heapMeter struct {
	base, with uint64
	peak       atomic.Uint64
	stop       chan struct{}
	done       chan struct{}
	kept, max  []float64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func heapLive() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// start is called with the timer stopped.
func (h *heapMeter) start() {
	h.base = heapLive()
	h.peak.Store(h.base)
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := heapObjects(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// end is called with the timer stopped, while the Router is reachable.
func (h *heapMeter) end() {
	close(h.stop)
	<-h.done
	if v := heapObjects(); v > h.peak.Load() {
		h.peak.Store(v)
	}
	h.max = append(h.max, float64(h.peak.Load())-float64(h.base))
	h.with = heapLive()
}

// dropped is called once the Router is unreachable.
func (h *heapMeter) dropped() {
	h.kept = append(h.kept, float64(h.with)-float64(heapLive()))
}

func (h *heapMeter) report(b *testing.B) {
	if len(h.kept) == 0 {
		return
	}
	b.ReportMetric(median(h.kept), "kept-B/op")
	b.ReportMetric(median(h.max), "peak-B/op")
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkRouterOSInitial: an empty router to the full plan. "pipelined"
// is routeros.Router (window of 256, count check, rules, verify by counts);
// "one-per-rtt" is what existing tools do: go-routeros' sync client, one
// add per round trip, no read-back.
func BenchmarkRouterOSInitial(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		p := rosPlan(rosSet(n, 0, 0))
		b.Run("pipelined/"+strconv.Itoa(n), func(b *testing.B) {
			var cmds int64
			var h heapMeter
			for b.Loop() {
				b.StopTimer()
				srv := rosServer(b)
				r := quietRouter(srv.Addr(), routeros.BlueGreen)
				h.start()
				b.StartTimer()
				rosApply(b, r, p)
				b.StopTimer()
				h.end()
				runtime.KeepAlive(r)
				r = nil
				h.dropped()
				cmds = srv.Stats(b).Commands
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds), "commands/op")
			h.report(b)
		})
		if n > 10_000 && os.Getenv("ROUTEROS_BASELINE_100K") == "" {
			continue // ~2.5 minutes per run: set ROUTEROS_BASELINE_100K=1 to measure it
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
				cmds = srv.Stats(b).Commands
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds), "commands/op")
		})
	}
}

// BenchmarkRouterOSIncremental: a router holding an n-entry plan (and, for
// standby, its standby generation), synced by the same Router, syncs a
// plan with 1% of the entries replaced (n/100 removed, n/100 added).
// "full-read" is in-place with a fresh Router, which knows nothing and
// reads every entry, as every sync did before the memo; "in-place-20"
// replaces 10 entries whatever n, to show what does not scale with the
// change.
func BenchmarkRouterOSIncremental(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, v := range []struct {
			name        string
			mode        routeros.Mode
			fresh       bool
			changeEvery int // every changeEvery-th entry moves: n/changeEvery removed and added
		}{
			{"in-place", routeros.InPlace, false, 100},
			{"standby", routeros.Standby, false, 100},
			{"blue-green", routeros.BlueGreen, false, 100},
			{"full-read", routeros.InPlace, true, 100},
			{"in-place-20", routeros.InPlace, false, n / 10},
		} {
			p0, p1, p2 := rosPlan(rosSet(n, 0, 0)), rosPlan(rosSet(n, v.changeEvery, 0)), rosPlan(rosSet(n, v.changeEvery, 1))
			b.Run(v.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				var cmds int64
				var rep backend.Report
				var h heapMeter
				for b.Loop() {
					b.StopTimer()
					srv := rosServer(b)
					r := quietRouter(srv.Addr(), v.mode)
					rosApply(b, r, p0)
					rosApply(b, r, p1)
					if v.fresh {
						r = quietRouter(srv.Addr(), v.mode)
					}
					before := srv.Stats(b).Commands
					h.start()
					b.StartTimer()
					rep = rosApply(b, r, p2)
					b.StopTimer()
					h.end()
					runtime.KeepAlive(r)
					r = nil
					h.dropped()
					cmds = srv.Stats(b).Commands - before
					srv.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(cmds), "commands/op")
				b.ReportMetric(float64(rep.ElementsAdded+rep.ElementsRemoved), "entries/op")
				h.report(b)
			})
		}
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
		cmds = srv.Stats(b).Commands
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cmds), "commands/op")
}
