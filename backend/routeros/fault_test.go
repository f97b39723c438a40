package routeros

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// watcher checks, before every command the router runs, that each managed
// rule references a list whose content is complete: exactly one of the
// plans' contents (atomic modes), or for each sampled address the old or
// the new membership (InPlace).
type watcher struct {
	srv     *routerostest.Server
	atomic  bool
	mu      sync.Mutex
	allowed []cidr.Set // contents a referenced list may have
	samples []netipAddr
	checks  int
	bad     []string
}

type netipAddr = netipx.IPRange // a single address as a range, to reuse entries

func (w *watcher) allow(s cidr.Set) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.allowed = append(w.allowed, s)
}

// listContent reads a list's enabled entries from the simulator: ours,
// and a technician's (which the tests only make equal to wanted entries).
func listContent(srv *routerostest.Server, fam, name string) (cidr.Set, []netipx.IPRange) {
	var b cidr.Builder
	var rs []netipx.IPRange
	for _, e := range srv.AddressList(fam, name) {
		if e.Disabled {
			continue
		}
		r, ok := parseEntry(e.Address)
		if !ok {
			panic(e.Address)
		}
		b.AddRange(r)
		rs = append(rs, r)
	}
	s, _ := b.Set()
	slices.SortFunc(rs, rangeCmp)
	return s, rs
}

func (w *watcher) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checks++
	for _, fam := range []string{"ip", "ipv6"} {
		for _, r := range w.srv.NATRules(fam) {
			l := strings.TrimPrefix(r.Props["src-address-list"], "!")
			if l == "" {
				continue
			}
			got, rs := listContent(w.srv, fam, l)
			ok := false
			for _, a := range w.allowed {
				want := a.IPv4()
				if fam == "ipv6" {
					want = a.IPv6()
				}
				if w.atomic {
					// Exactly the entries a sync loads for that content.
					want := entries(steer.Set{Addrs: want}, map[string]int{"ip": 4, "ipv6": 6}[fam])
					ok = ok || slices.Equal(rs, want)
				} else {
					ok = true
				}
			}
			if !w.atomic {
				for _, x := range w.samples {
					a := x.From()
					if a.Is4() != (fam == "ip") {
						continue
					}
					in := got.Contains(a)
					if !slices.ContainsFunc(w.allowed, func(s cidr.Set) bool { return s.Contains(a) == in }) {
						ok = false
						break
					}
				}
			}
			if !ok && len(w.bad) < 5 {
				w.bad = append(w.bad, fmt.Sprintf("check %d: rule %s references %s holding %d entries, not a complete content", w.checks, r.ID, l, len(rs)))
			}
		}
	}
}

func TestFaultsConverge(t *testing.T) {
	if testing.Short() {
		t.Skip("many syncs")
	}
	// With hand, a technician's untagged entry holding an address every
	// plan wants sits in each generation name the syncs may use, before
	// the first: every add of it traps, and the entry stands for it.
	hand := netip.MustParsePrefix("198.51.100.0/24")
	type variant struct {
		mode Mode
		hand bool
	}
	var variants []variant
	for _, h := range []bool{false, true} {
		for _, mode := range []Mode{BlueGreen, Standby, InPlace} {
			variants = append(variants, variant{mode, h})
		}
	}
	for _, v := range variants {
		mode := v.mode
		name := mode.String()
		if v.hand {
			name += "/hand entry"
		}
		t.Run(name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(7, uint64(mode)))
			set0 := randomSet(rnd, 400, 40)
			set1 := mutate(rnd, set0, 0.05)
			set2 := mutate(rnd, set1, 0.05)
			if v.hand {
				withHand := func(s cidr.Set) cidr.Set {
					var b cidr.Builder
					b.AddSet(s)
					b.RemovePrefix(netip.MustParsePrefix("198.51.96.0/20")) // the entry stands alone
					b.AddPrefix(hand)
					return must(b.Set())
				}
				set0, set1, set2 = withHand(set0), withHand(set1), withHand(set2)
			}
			plans := []*steer.Plan{testPlan(t, set0), testPlan(t, set1), testPlan(t, set2)}
			var srcs []netipx.IPRange
			for _, a := range sources(rnd, plans[2], 300) {
				srcs = append(srcs, netipx.IPRangeFrom(a, a))
			}
			for _, a := range sources(rnd, plans[1], 0) {
				srcs = append(srcs, netipx.IPRangeFrom(a, a))
			}

			// scenario syncs the plans in turn on a fresh router, with a
			// disconnect at server command k (0: none), re-running each
			// failed sync. It returns the server's command count.
			scenario := func(k int64, action routerostest.FaultAction) int64 {
				var w *watcher
				var fired atomic.Bool
				srv := newSim(t, routerostest.Options{Fault: func(fc routerostest.FaultContext) routerostest.Fault {
					w.check()
					if fc.Total == k && fired.CompareAndSwap(false, true) {
						return routerostest.Fault{Action: action}
					}
					return routerostest.Fault{}
				}})
				w = &watcher{srv: srv, atomic: mode != InPlace, samples: srcs}
				var handIDs []string
				if v.hand {
					for g := 1; g <= 8; g++ {
						ids, err := srv.Seed("ip", routerostest.Entry{List: fmt.Sprintf("%senglish.v4.%d", defaultPrefix, g), Address: hand.String()})
						if err != nil {
							t.Fatal(err)
						}
						handIDs = append(handIDs, ids...)
					}
				}
				r := &Router{Addr: srv.Addr(), User: "admin", Mode: mode, Window: 16, RemoveBatch: 50, IOTimeout: 5 * time.Second}
				for i, p := range plans {
					w.allow(p.Sets[0].Addrs)
					for try := 0; ; try++ {
						_, err := r.Apply(context.Background(), p, backend.ApplyOptions{})
						if err == nil {
							break
						}
						if try > 0 || !fired.Load() {
							t.Fatalf("k=%d plan %d try %d: %v", k, i, try, err)
						}
					}
					sameRouting(t, srv, p, sources(rnd, p, 200))
				}
				fired.Store(true) // disarm for the convergence check
				w.check()
				if len(w.bad) > 0 {
					t.Fatalf("k=%d: %s", k, strings.Join(w.bad, "\n"))
				}
				// Converged by a full read, trusting nothing remembered.
				full := &Router{Addr: srv.Addr(), User: "admin", Mode: mode, Verify: VerifyFull}
				if rep, err := full.Apply(context.Background(), plans[2], backend.ApplyOptions{DryRun: true}); err != nil || rep.Changed() {
					t.Fatalf("k=%d: not converged: %+v %v", k, rep, err)
				}
				kept := map[string]bool{}
				for _, e := range srv.AddressList("ip", "") {
					kept[e.ID] = true
				}
				for _, id := range handIDs {
					if !kept[id] {
						t.Fatalf("k=%d: the hand entry %s was removed", k, id)
					}
				}
				return srv.Stats().Commands
			}
			total := scenario(0, routerostest.FaultNone)
			iters := 24
			if v.hand {
				iters = 8 // boundaries and 5 random points
			}
			for i := range iters {
				k := 1 + rnd.Int64N(total)
				if i < 3 { // the boundaries: login, first list command, last command
					k = []int64{1, 2, total}[i]
				}
				action := routerostest.FaultDisconnect
				if i%4 == 3 {
					action = routerostest.FaultFatal
				}
				t0 := time.Now()
				scenario(k, action)
				if d := time.Since(t0); d > time.Second {
					t.Logf("k=%d action=%v took %v", k, action, d)
				}
			}
			t.Logf("%d commands per clean scenario, %d faults injected", total, iters)
		})
	}
}
