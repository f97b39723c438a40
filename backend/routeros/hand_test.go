package routeros

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/geosteer/geosteer/cidr"
)

// TestHandEntry: a technician's untagged entry inside a managed list is
// never removed. When it holds exactly an address the plan wants, the add
// meets RouterOS's duplicate trap; the sync counts the hand entry as that
// address (the list is complete for routing), remembers it, and later
// syncs confirm it by counts and converge. An overlapping hand entry
// does not trap: both stay. A disabled one routes nothing, so no rule is
// pointed at the list.
func TestHandEntry(t *testing.T) {
	tests := []struct {
		name     string
		addr     string // the technician's entry
		before   bool   // put into generation 1 before the first sync; else into the live list after it
		disabled bool
		wider    bool   // reaches beyond the plan: routing is the union, not the plan
		wantErr  string // of the sync meeting the entry
	}{
		{"equal, in the live list", "198.51.100.0/24", false, false, false, ""},
		{"equal, list made by hand first", "198.51.100.0/24", true, false, false, ""},
		{"overlapping, in the live list", "198.51.100.128/25", false, false, false, ""},
		{"overlapping, list made by hand first", "198.51.100.0/25", true, false, false, ""},
		{"overlapping wider, in the live list", "198.51.100.0/23", false, false, true, ""},
		{"equal but disabled, list made by hand first", "198.51.100.0/24", true, true, false, "disabled"},
	}
	for _, tc := range tests {
		for _, mode := range []Mode{BlueGreen, Standby, InPlace} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				rnd := rand.New(rand.NewPCG(8, uint64(mode)))
				var b cidr.Builder
				b.AddSet(randomSet(rnd, 300, 30))
				b.RemovePrefix(netip.MustParsePrefix("198.51.96.0/20")) // A stands alone
				b.RemovePrefix(netip.MustParsePrefix("192.0.2.0/24"))
				base := must(b.Set())
				b.AddPrefix(netip.MustParsePrefix("198.51.100.0/24")) // A
				withA := must(b.Set())
				b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24"))
				withAB := must(b.Set())

				srv := newSim(t, routerostest.Options{})
				r := &Router{Addr: srv.Addr(), User: "admin", Mode: mode}
				var handID string
				putHand := func(list string) {
					words := []string{"/ip/firewall/address-list/add", "=list=" + list, "=address=" + tc.addr}
					if tc.disabled {
						words = append(words, "=disabled=yes")
					}
					handID = routerCmd(t, srv, words...).done.Map["ret"]
				}
				checkHand := func(when string) {
					t.Helper()
					if handID == "" {
						return // not put yet
					}
					for _, e := range srv.AddressList("ip", "") {
						if e.ID == handID {
							if e.Comment != "" || e.Disabled != tc.disabled {
								t.Fatalf("%s: the hand entry changed: %+v", when, e)
							}
							return
						}
					}
					t.Fatalf("%s: the hand entry %s was removed", when, handID)
				}
				sync := func(set cidr.Set, when string) backend.Report {
					t.Helper()
					p := testPlan(t, set)
					rep, err := r.Apply(context.Background(), p, backend.ApplyOptions{})
					if err != nil {
						t.Fatalf("%s: %v", when, err)
					}
					checkHand(when)
					if !tc.wider || handID == "" {
						sameRouting(t, srv, p, sources(rnd, p, 500))
					}
					return rep
				}

				if tc.before {
					putHand(defaultPrefix + "english.v4.1")
				} else {
					sync(base, "first sync")
					l, _ := liveList(t, srv)
					putHand(l)
				}
				if tc.wantErr != "" {
					_, err := r.Apply(context.Background(), testPlan(t, withA), backend.ApplyOptions{})
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("sync over a disabled hand entry: %v, want an error saying %q", err, tc.wantErr)
					}
					checkHand("failed sync")
					for _, nr := range srv.NATRules("ip") {
						if strings.HasSuffix(nr.Props["src-address-list"], "english.v4.1") {
							t.Fatalf("rule %s references the list missing an address", nr.ID)
						}
					}
					return
				}
				sync(withA, "plan gains A")
				sync(withAB, "plan gains B") // Standby: back to the generation holding the hand entry
				rep := sync(withAB, "re-run")
				if rep.Changed() || r.read != "memo" {
					t.Errorf("re-run: read %q, report %+v; want a confirmed memo and no change", r.read, rep)
				}
				sync(withA, "plan drops B")
				rep = sync(withA, "re-run")
				if rep.Changed() || r.read != "memo" {
					t.Errorf("re-run: read %q, report %+v; want a confirmed memo and no change", r.read, rep)
				}
				// A Router without the memo (a restart) reads the router and
				// converges too, removing nothing.
				fresh := &Router{Addr: srv.Addr(), User: "admin", Mode: mode, Verify: VerifyFull}
				rep, err := fresh.Apply(context.Background(), testPlan(t, withA), backend.ApplyOptions{})
				if err != nil || rep.ElementsRemoved != 0 {
					t.Fatalf("fresh Router: %+v %v", rep, err)
				}
				checkHand("fresh Router")
				// The technician removes the entry: the count by id notices,
				// and the address is added back.
				routerCmd(t, srv, "/ip/firewall/address-list/remove", "=.id="+handID)
				handID = ""
				sync(withA, "hand entry removed")
				rep = sync(withA, "re-run")
				if rep.Changed() || r.read != "memo" {
					t.Errorf("re-run: read %q, report %+v; want a confirmed memo and no change", r.read, rep)
				}
			})
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestHandEntryIPv6: a technician's IPv6 entry equal to a wanted prefix,
// in the live list, stands for it in every mode, is confirmed by the
// counts of the IPv6 menu, and stays when the plan drops the prefix.
func TestHandEntryIPv6(t *testing.T) {
	x := netip.MustParsePrefix("2001:db8:100::/48")
	for _, mode := range []Mode{BlueGreen, Standby, InPlace} {
		t.Run(mode.String(), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(9, uint64(mode)))
			var b cidr.Builder
			b.AddSet(randomSet(rnd, 50, 30))
			b.RemovePrefix(netip.MustParsePrefix("2001:db8::/32"))
			without := must(b.Set())
			b.AddPrefix(x)
			with := must(b.Set())

			srv := newSim(t, routerostest.Options{})
			r := &Router{Addr: srv.Addr(), User: "admin", Mode: mode}
			apply(t, r, testPlan(t, without))
			var live string
			for _, e := range srv.AddressList("ipv6", "") {
				if strings.HasPrefix(e.List, "geosteer-english.v6.") {
					live = e.List
				}
			}
			if live == "" {
				t.Fatal("no IPv6 list")
			}
			hand := routerCmd(t, srv, "/ipv6/firewall/address-list/add", "=list="+live, "=address="+x.String()).done.Map["ret"]
			for _, p := range []cidr.Set{with, with, without, without} {
				apply(t, r, testPlan(t, p))
				sameRouting(t, srv, testPlan(t, p), sources(rnd, testPlan(t, p), 200))
			}
			if r.read != "memo" {
				t.Errorf("the last sync read %q", r.read)
			}
			found := false
			for _, e := range srv.AddressList("ipv6", "") {
				if e.ID == hand {
					found = e.Comment == "" && !e.Disabled && e.Address == x.String()
				}
			}
			if !found {
				t.Error("the technician's IPv6 entry is gone or changed")
			}
		})
	}
}
