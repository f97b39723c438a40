package routeros

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros/routerostest"
)

func TestSyncRoutesLikePlan(t *testing.T) {
	for _, mode := range []Mode{BlueGreen, Standby, InPlace} {
		t.Run(mode.String(), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, uint64(mode)))
			srv := newSim(t, routerostest.Options{Users: map[string]string{"api": "s3cret"}})
			// A technician's own rule and entry, which must survive.
			handRule, _ := srv.SeedNAT("ip", map[string]string{"chain": "dstnat", "action": "dst-nat", "protocol": "tcp",
				"dst-address": "203.0.113.9", "dst-port": "25", "to-addresses": "10.9.9.9", "to-ports": "25", "comment": "by hand"})
			srv.Seed("ip", routerostest.Entry{List: "blocked", Address: "192.0.2.1", Comment: "by hand"})

			r := &Router{Addr: srv.Addr(), User: "api", Password: "s3cret", Mode: mode, Window: 64}
			set := randomSet(rnd, 3000, 300)
			p := testPlan(t, set)
			rep := apply(t, r, p)
			if rep.ElementsAdded != set.IPv4().NumRanges()+set.IPv6().NumPrefixes() || rep.RulesChanged != 9 /* 6 + 1 + the odd range as 2 */ {
				t.Errorf("first sync: %+v", rep)
			}
			sameRouting(t, srv, p, sources(rnd, p, 3000))

			if rep := apply(t, r, p); rep.Changed() || len(rep.Changes) > 0 {
				t.Errorf("second sync of the same plan changed %+v", rep)
			}

			for round := range 3 {
				set = mutate(rnd, set, 0.01)
				p = testPlan(t, set)
				rep := apply(t, r, p)
				t.Logf("round %d: %+v", round, rep)
				sameRouting(t, srv, p, sources(rnd, p, 3000))
				if (mode == InPlace || mode == Standby && round > 0) && rep.ElementsAdded > set.NumRanges()/5 {
					t.Errorf("%v: a 1%% change added %d entries", mode, rep.ElementsAdded)
				}
			}
			if e := srv.AddressList("ip", "blocked"); len(e) != 1 {
				t.Errorf("hand-made list: %+v", e)
			}
			if !slices.ContainsFunc(srv.NATRules("ip"), func(r routerostest.NATRule) bool { return r.ID == handRule }) {
				t.Error("hand-made rule removed")
			}
			lists := map[string]int{}
			for _, e := range srv.AddressList("ip", "") {
				lists[e.List]++
			}
			want := 2 // blocked + one generation
			if mode == Standby {
				want = 3
			}
			if len(lists) != want {
				t.Errorf("lists on the router: %v", lists)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	rnd := rand.New(rand.NewPCG(2, 2))
	srv := newSim(t, routerostest.Options{})
	r := &Router{Addr: srv.Addr(), User: "admin"}
	p := testPlan(t, randomSet(rnd, 100, 10))
	rep, err := r.Apply(context.Background(), p, backend.ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || !rep.Changed() || len(rep.Changes) == 0 {
		t.Errorf("dry run report %+v", rep)
	}
	if st := srv.Stats(); st.ByCommand["/ip/firewall/address-list/add"] > 0 || st.ByCommand["/ip/firewall/nat/add"] > 0 {
		t.Errorf("dry run wrote: %v", st.ByCommand)
	}
	if n := srv.AddressListLen("ip"); n != 0 {
		t.Errorf("dry run left %d entries", n)
	}
	got := apply(t, r, p)
	if got.ElementsAdded != rep.ElementsAdded || got.RulesChanged != rep.RulesChanged {
		t.Errorf("dry run said %+v, the sync did %+v", rep, got)
	}
	t.Log(strings.Join(rep.Changes, "\n"))
}

// An API sync with a Timeout would let every entry expire together (it
// does not refresh the timeouts of entries it keeps), so Apply refuses it
// before it connects or writes anything.
func TestTimeoutRefused(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 3))
	srv := newSim(t, routerostest.Options{})
	r := &Router{Addr: srv.Addr(), User: "admin", Timeout: time.Hour}
	_, err := r.Apply(context.Background(), testPlan(t, randomSet(rnd, 10, 2)), backend.ApplyOptions{})
	if !errors.Is(err, ErrTimeoutUnsupported) {
		t.Fatalf("Apply with a Timeout: %v, want ErrTimeoutUnsupported", err)
	}
	if st := srv.Stats(); len(st.ByCommand) > 0 {
		t.Errorf("Apply with a Timeout sent %v", st.ByCommand)
	}
}
