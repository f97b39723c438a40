package routeros

import (
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// TestMemoAfterRestart: a reboot renumbers the router's ids while every
// count stays the same. The remembered ids must not be trusted then: a
// remove by a stale id would hit another entry, here a technician's in a
// list not ours.
func TestMemoAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		last string // the entry added last, dropped after the reboot
	}{
		{"prefix", "192.168.0.0-192.168.255.255"},
		{"range", "192.168.0.1-192.168.0.5"}, // checked by id and list only
	} {
		for _, mode := range []Mode{BlueGreen, Standby, InPlace} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				srv := newSim(t, routerostest.Options{})
				r := &Router{Addr: srv.Addr(), User: "admin", Mode: mode}
				// A gap before our ids, so the reboot shifts them.
				gap := routerCmd(t, srv, "/ip/firewall/address-list/add", "=list=tech", "=address=203.0.113.1").done.Map["ret"]
				var b cidr.Builder
				for _, p := range []string{"10.0.0.0/8", "172.16.0.0/12"} {
					b.AddPrefix(netip.MustParsePrefix(p))
				}
				last := netipx.MustParseIPRange(tc.last)
				b.AddRange(last)
				full := must(b.Set())
				apply(t, r, testPlan(t, full))
				hand := routerCmd(t, srv, "/ip/firewall/address-list/add", "=list=tech", "=address=203.0.113.2").done.Map["ret"]
				routerCmd(t, srv, "/ip/firewall/address-list/remove", "=.id="+gap)
				srv.Restart()

				// Drop the entry added last: its stale id now names the
				// technician's entry.
				b.RemoveRange(last)
				p := testPlan(t, must(b.Set()))
				apply(t, r, p)
				apply(t, r, p)
				if got := srv.AddressList("ip", "tech"); len(got) != 1 || got[0].Address != "203.0.113.2" {
					t.Fatalf("the technician's entry (was %s) is gone or changed: %+v", hand, got)
				}
				sameRouting(t, srv, p, sources(nil, p, 0))
			})
		}
	}
}
