package benchmarks

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/nftables"
	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// nftables: the seed policy's plan (the six countries as one set, IPv4 and
// IPv6; "not english" to the strict server on both MX addresses; each MX
// split by source half) applied to a fresh network namespace over netlink,
// next to nft -f of the rendered script. Root only.

// englishSet is the six countries of the shared database, IPv4 and IPv6.
func englishSet(tb testing.TB) cidr.Set {
	nets := dataset.Networks(tb)
	var b cidr.Builder
	for _, fam := range []int{4, 6} {
		for _, p := range dataset.Select(nets, fam, dataset.Six...) {
			b.AddPrefix(p)
		}
	}
	s, err := b.Set()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// nftSeedPlan is the seed policy written out by hand (steer's compiler
// will produce it from the policy file).
func nftSeedPlan(tb testing.TB, english cidr.Set) *steer.Plan {
	var rules []steer.Rule
	for _, fam := range []int{4, 6} {
		mx := []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")}
		srv := []netip.AddrPort{netip.MustParseAddrPort("198.19.253.2:25"), netip.MustParseAddrPort("198.19.253.6:25"), netip.MustParseAddrPort("198.19.253.10:25")}
		halves := []netipx.IPRange{netipx.MustParseIPRange("0.0.0.0-127.255.255.255"), netipx.MustParseIPRange("128.0.0.0-255.255.255.255")}
		if fam == 6 {
			mx = []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}
			srv = []netip.AddrPort{netip.MustParseAddrPort("[fd00:fffe::2]:25"), netip.MustParseAddrPort("[fd00:fffe:1::2]:25"), netip.MustParseAddrPort("[fd00:fffe:2::2]:25")}
			halves = []netipx.IPRange{netipx.MustParseIPRange("::-7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netipx.MustParseIPRange("8000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
		}
		for i, m := range mx {
			rules = append(rules, steer.Rule{Name: fmt.Sprintf("foreign-mx%d-v%d", i+1, fam), Family: fam, DstAddr: m, DstPort: 25,
				SrcSet: "english", SrcSetNot: true, Target: "foreign", To: srv[2]})
		}
		for i, m := range mx {
			for h := range halves {
				t := (h + i) % 2 // rotated on the second MX
				rules = append(rules, steer.Rule{Name: fmt.Sprintf("split-mx%d-v%d-%d", i+1, fam, h), Family: fam, DstAddr: m, DstPort: 25,
					Src: halves[h], Target: []string{"a", "b"}[t], To: srv[t]})
			}
		}
	}
	p := &steer.Plan{Sets: []steer.Set{{Name: "english", Addrs: english, Comment: "US CA GB AU NZ IE"}}, Rules: rules}
	if err := p.Validate(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// onePercent changes about 1% of english's ranges: every 200th range
// removed, and as many prefixes of another country added.
func onePercent(tb testing.TB, english cidr.Set) cidr.Set {
	var b cidr.Builder
	rs := english.Ranges()
	for i, r := range rs {
		if i%200 != 0 {
			b.AddRange(r)
		}
	}
	other := append(dataset.Select(dataset.Networks(tb), 4, "DE"), dataset.Select(dataset.Networks(tb), 6, "DE")...)
	for i := 0; i < len(rs)/200 && i*7 < len(other); i++ {
		b.AddPrefix(other[i*7])
	}
	s, err := b.Set()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var nsCount atomic.Int64

// freshNS creates a network namespace and returns its name and an open fd,
// both released by the returned function.
func freshNS(tb testing.TB) (string, int, func()) {
	name := fmt.Sprintf("gs-bench-%d-%d", os.Getpid(), nsCount.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add: %v: %s", err, out)
	}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return name, fd, func() {
		unix.Close(fd)
		exec.Command("ip", "netns", "del", name).Run()
	}
}

func needNft(tb testing.TB) {
	testenv.NeedRoot(tb)
	testenv.NeedCommand(tb, "ip", "iproute2")
	testenv.NeedCommand(tb, "nft", "nftables")
}

// slabKiB is the kernel's slab memory (set elements are kmalloc'd). The
// machine is shared, so it is noisy; the benchmark reports the mean over
// its iterations of what deleting the table frees.
func slabKiB(tb testing.TB) int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Slab:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// applyModes are the netlink benchmarks' Verify settings.
var applyModes = map[string]nftables.Verify{
	"verify-generation": nftables.VerifyGeneration, // the default
	"verify-full":       nftables.VerifyFull,
	"noverify":          nftables.VerifyNone,
}

func BenchmarkNftablesApply(b *testing.B) {
	needNft(b)
	p := nftSeedPlan(b, englishSet(b))
	var script strings.Builder
	if err := (&nftables.Backend{}).Render(&script, p); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "seed.nft")
	if err := os.WriteFile(file, []byte(script.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("plan: %d ranges (%d IPv4, %d IPv6), %d rules; script %d bytes",
		p.Sets[0].Addrs.NumRanges(), p.Sets[0].Addrs.IPv4().NumRanges(), p.Sets[0].Addrs.IPv6().NumRanges(), len(p.Rules), script.Len())

	for _, mode := range []string{"verify-generation", "verify-full", "noverify", "nft-f"} {
		b.Run(mode, func(b *testing.B) {
			slab, maxrss := 0, int64(0)
			var sys, cpu time.Duration
			for range b.N {
				b.StopTimer()
				name, fd, done := freshNS(b)
				b.StartTimer()
				switch mode {
				case "nft-f":
					cmd := exec.Command("ip", "netns", "exec", name, "nft", "-f", file)
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("nft -f: %v: %s", err, out)
					}
					maxrss = max(maxrss, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
					sys += cmd.ProcessState.SystemTime()
					cpu += cmd.ProcessState.SystemTime() + cmd.ProcessState.UserTime()
				default:
					be := &nftables.Backend{NetNS: fd, Verify: applyModes[mode], Logger: benchLogger()}
					var ru0, ru1 syscall.Rusage
					syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
					if _, err := be.Apply(context.Background(), p, backend.ApplyOptions{}); err != nil {
						b.Fatal(err)
					}
					syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
					sys += time.Duration(ru1.Stime.Nano() - ru0.Stime.Nano())
					cpu += time.Duration(ru1.Stime.Nano() - ru0.Stime.Nano() + ru1.Utime.Nano() - ru0.Utime.Nano())
				}
				b.StopTimer()
				// The table's memory: what deleting it gives back. Freeing
				// is deferred (RCU, a work queue), hence the wait.
				s1 := slabKiB(b)
				if out, err := exec.Command("ip", "netns", "exec", name, "nft", "delete", "table", "inet", nftables.DefaultTable).CombinedOutput(); err != nil {
					b.Fatalf("nft delete table: %v: %s", err, out)
				}
				time.Sleep(500 * time.Millisecond)
				slab += s1 - slabKiB(b)
				done()
				b.StartTimer()
			}
			b.ReportMetric(float64(slab)/float64(b.N)/1024, "slab-MiB")
			// CPU time (the process's, or nft's) is steadier than wall time
			// on a loaded machine; sys is nearly all the kernel's inserts.
			b.ReportMetric(sys.Seconds()/float64(b.N), "sys-s/op")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			if maxrss > 0 {
				b.ReportMetric(float64(maxrss)/1024, "nft-maxrss-MiB")
			}
		})
	}
}

// BenchmarkNftablesIncremental applies a 1% change of the english set to a
// table holding the seed plan, and back, alternately; each op is one
// incremental apply. The Backend remembers the state it applied, so the
// diff needs no read-back; "restart" uses a new Backend for every op (a
// new process: it must read the table back to diff); "nft-f-delta" is the
// peer: nft -f of a script deleting and adding the changed ranges (with
// GEOSTEER_NFT_DELTA=1: it takes minutes).
func BenchmarkNftablesIncremental(b *testing.B) {
	needNft(b)
	e1 := englishSet(b)
	e2 := onePercent(b, e1)
	plans := []*steer.Plan{nftSeedPlan(b, e2), nftSeedPlan(b, e1)}
	dir := b.TempDir()
	deltas := []string{filepath.Join(dir, "to-e2.nft"), filepath.Join(dir, "to-e1.nft")}
	writeDelta(b, deltas[0], e1, e2)
	writeDelta(b, deltas[1], e2, e1)
	for _, mode := range []string{"verify-generation", "verify-full", "noverify", "restart", "nft-f-delta"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "nft-f-delta" && os.Getenv("GEOSTEER_NFT_DELTA") == "" {
				b.Skip("nft -f of the delta takes minutes; set GEOSTEER_NFT_DELTA=1")
			}
			name, fd, done := freshNS(b)
			defer done()
			if mode == "nft-f-delta" {
				be := &nftables.Backend{NetNS: fd}
				if _, err := be.Apply(context.Background(), plans[1], backend.ApplyOptions{}); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := range b.N {
					if out, err := exec.Command("ip", "netns", "exec", name, "nft", "-f", deltas[i%2]).CombinedOutput(); err != nil {
						b.Fatalf("nft -f delta: %v: %s", err, out)
					}
				}
				b.StopTimer()
				if rep, err := be.Apply(context.Background(), plans[(b.N+1)%2], backend.ApplyOptions{}); err != nil || rep.Changed() {
					b.Fatalf("after the nft deltas the table is not the plan: %v %v", rep.Changes, err)
				}
				return
			}
			be := &nftables.Backend{NetNS: fd, Verify: applyModes[mode], Logger: benchLogger()}
			ctx := context.Background()
			if _, err := be.Apply(ctx, plans[1], backend.ApplyOptions{}); err != nil {
				b.Fatal(err)
			}
			var bytes, changed int
			b.ResetTimer()
			for i := range b.N {
				if mode == "restart" {
					be = &nftables.Backend{NetNS: fd, Logger: benchLogger()}
				}
				rep, err := be.Apply(ctx, plans[i%2], backend.ApplyOptions{})
				if err != nil {
					b.Fatal(err)
				}
				changed += rep.ElementsAdded + rep.ElementsRemoved
				for _, c := range rep.Changes {
					var msgs, n int
					if _, err := fmt.Sscanf(c, "transaction: %d messages, %d bytes", &msgs, &n); err == nil {
						bytes += n
					}
				}
				if strings.HasPrefix(rep.Changes[0], "table") {
					b.Fatalf("not incremental: %v", rep.Changes)
				}
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "sent-B/op")
			b.ReportMetric(float64(changed)/float64(b.N), "ranges-changed/op")
		})
	}
}

// writeDelta writes the nft script that turns the english sets holding
// from into to: the ranges of from that are not ranges of to deleted, then
// those of to that are not of from added, as nft users write updates.
func writeDelta(tb testing.TB, file string, from, to cidr.Set) {
	var sb strings.Builder
	for _, fam := range []int{4, 6} {
		f, t := from.IPv4(), to.IPv4()
		set := "english_v4"
		if fam == 6 {
			f, t, set = from.IPv6(), to.IPv6(), "english_v6"
		}
		in := func(s cidr.Set) map[netipx.IPRange]bool {
			m := map[netipx.IPRange]bool{}
			for _, r := range s.Ranges() {
				m[r] = true
			}
			return m
		}
		fm, tm := in(f), in(t)
		list := func(verb string, rs []netipx.IPRange, skip map[netipx.IPRange]bool) {
			var els []string
			for _, r := range rs {
				if !skip[r] {
					els = append(els, r.String())
				}
			}
			if len(els) > 0 {
				fmt.Fprintf(&sb, "%s element inet %s %s { %s }\n", verb, nftables.DefaultTable, set, strings.Join(els, ", "))
			}
		}
		list("delete", f.Ranges(), tm)
		list("add", t.Ranges(), fm)
	}
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkNftablesIncrementalSize: the time of an incremental apply by
// the size of the change (ranges removed and as many added), to see what
// is proportional to the change and what is not.
func BenchmarkNftablesIncrementalSize(b *testing.B) {
	needNft(b)
	e1 := englishSet(b)
	rs := e1.Ranges()
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		var bb cidr.Builder
		bb.AddSet(e1)
		step := len(rs) / n
		for i := range n {
			bb.RemoveRange(rs[i*step])
		}
		e2, err := bb.Set()
		if err != nil {
			b.Fatal(err)
		}
		plans := []*steer.Plan{nftSeedPlan(b, e2), nftSeedPlan(b, e1)}
		b.Run(fmt.Sprintf("ranges=%d", n), func(b *testing.B) {
			_, fd, done := freshNS(b)
			defer done()
			be := &nftables.Backend{NetNS: fd, Logger: benchLogger()}
			ctx := context.Background()
			if _, err := be.Apply(ctx, plans[1], backend.ApplyOptions{}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := be.Apply(ctx, plans[i%2], backend.ApplyOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchLogger logs the backend's phase timings with -v and
// GEOSTEER_DEBUG=1.
func benchLogger() *slog.Logger {
	if os.Getenv("GEOSTEER_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
