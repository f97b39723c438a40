package benchmarks

import (
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/cidr"
)

// TestSteerRouteMin is a diagnostic for a noisy shared machine, not a
// benchmark of record (BenchmarkSteerRoute is): it times 300 alternating
// passes of each implementation over the whole 2^16-address stream,
// wall clock on a locked thread, and logs the minimum, 25th percentile
// and median ns per lookup and their ratios to the bare table. The
// minimum is what a pass costs when nothing else ran on its core, so it
// compares code changes on a loaded machine where benchstat's medians
// swing by 30%. Run with STEER_MIN=1 (it takes about a minute); the one
// thing it checks is that Router.Rule and Entry.Rule agree.
func TestSteerRouteMin(t *testing.T) {
	if os.Getenv("STEER_MIN") == "" {
		t.Skip("STEER_MIN not set: a diagnostic, run on request")
	}
	_, plan := compiledSeed(t)
	rt, err := plan.Router()
	if err != nil {
		t.Fatal(err)
	}
	english, _ := plan.Set("english")
	tab, err := cidr.TableOf(english.Addrs)
	if err != nil {
		t.Fatal(err)
	}
	all := streams(dataset.Networks(t), 1, streamLen)
	runtime.LockOSThread()
	for _, s := range streamNames {
		addrs := all[s]
		dst := mx1
		if addrs[0].Is6() {
			dst = mx1v6
		}
		e := rt.Entry(dst, 25)
		impls := []func() int{
			func() (n int) {
				for i := range addrs {
					l, _ := tab.Lookup(addrs[i])
					n += int(l)
				}
				return
			},
			func() (n int) {
				for i := range addrs {
					n += rt.Route(addrs[i], dst, 25).Rule()
				}
				return
			},
			func() (n int) {
				for i := range addrs {
					d := rt.Route(addrs[i], dst, 25)
					n += d.Rule() + len(d.Target())
				}
				return
			},
			func() (n int) {
				for i := range addrs {
					n += rt.Rule(addrs[i], dst, 25)
				}
				return
			},
			func() (n int) {
				for i := range addrs {
					n += e.Rule(addrs[i])
				}
				return
			},
		}
		names := []string{"table", "router", "router-target", "rule", "entry"}
		ts := make([][]float64, len(impls))
		sums := make([]int, len(impls))
		for r := 0; r < 300; r++ {
			for k, f := range impls {
				t0 := time.Now()
				sums[k] = f()
				ts[k] = append(ts[k], float64(time.Since(t0).Nanoseconds())/float64(len(addrs)))
				steerSink += sums[k]
			}
		}
		// What it can check while it times: Router.Rule and Entry.Rule
		// answer alike for this destination.
		if sums[3] != sums[4] {
			t.Errorf("%s: Router.Rule and Entry.Rule disagree (rule sums %d and %d)", s, sums[3], sums[4])
		}
		for k := range impls {
			slices.Sort(ts[k])
		}
		for k := range impls {
			t.Logf("%-10s %-14s min %6.2f  p25 %6.2f  med %6.2f   min/table %.2f  p25/table %.2f", s, names[k], ts[k][0], ts[k][75], ts[k][150], ts[k][0]/ts[0][0], ts[k][75]/ts[0][75])
		}
	}
}
