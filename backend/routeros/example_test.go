package routeros_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros"
	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
)

func examplePlan() *steer.Plan {
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24"))
	b.AddPrefix(netip.MustParsePrefix("198.51.100.7/32"))
	english, _ := b.Set()
	return &steer.Plan{
		Sets: []steer.Set{{Name: "english", Addrs: english}},
		Rules: []steer.Rule{{
			Name: "foreign-mx1", Family: 4, DstAddr: netip.MustParseAddr("203.0.113.1"), DstPort: 25,
			SrcSet: "english", SrcSetNot: true, Target: "foreign", To: netip.MustParseAddrPort("10.0.0.3:25"),
		}},
	}
}

func ExampleRouter_Apply() {
	srv, _ := routerostest.NewServer(routerostest.Options{})
	defer srv.Close()

	r := &routeros.Router{Addr: srv.Addr(), User: "admin", Password: os.Getenv("ROUTEROS_PASSWORD")}
	rep, err := r.Apply(context.Background(), examplePlan(), backend.ApplyOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.ElementsAdded, "entries,", rep.RulesChanged, "rule")
	for _, e := range srv.AddressList("ip", "") {
		fmt.Println(e.List, e.Address, e.Comment)
	}
	to, port, _, _ := srv.Route(netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("203.0.113.1"), 25)
	fmt.Println("8.8.8.8 ->", to, port)
	// Output:
	// 2 entries, 1 rule
	// geosteer-english.v4.1 192.0.2.0/24 geosteer
	// geosteer-english.v4.1 198.51.100.7 geosteer
	// 8.8.8.8 -> 10.0.0.3 25
}

func ExampleScript_Render() {
	sc := &routeros.Script{}
	sc.Render(os.Stdout, examplePlan())
	// Output:
	// # geosteer list part 1: adds entries to lists no rule uses yet; safe alone.
	// /ip firewall address-list
	// :do { add list="geosteer-english.v4.hc8e5ef2692" address="192.0.2.0/24" comment="geosteer" } on-error={}
	// :do { add list="geosteer-english.v4.hc8e5ef2692" address="198.51.100.7" comment="geosteer" } on-error={}
	// # geosteer cut-over: import after the list files; stops before any change if a list is incomplete.
	// /ip firewall address-list
	// :if ([:len [find where list="geosteer-english.v4.hc8e5ef2692" and comment="geosteer"]] < 2) do={ :error "geosteer: list geosteer-english.v4.hc8e5ef2692 is incomplete (want 2 entries): import its list files first" }
	// /ip firewall nat
	// :if ([:len [find where comment~"^geosteer foreign-mx1(:|\$)"]] = 0) do={ add chain="dstnat" action="dst-nat" protocol="tcp" dst-address="203.0.113.1" dst-port="25" src-address-list="!geosteer-english.v4.hc8e5ef2692" to-addresses="10.0.0.3" to-ports="25" comment="geosteer foreign-mx1" } else={ set [find where comment~"^geosteer foreign-mx1(:|\$)"] chain="dstnat" action="dst-nat" protocol="tcp" dst-address="203.0.113.1" dst-port="25" src-address-list="!geosteer-english.v4.hc8e5ef2692" to-addresses="10.0.0.3" to-ports="25" comment="geosteer foreign-mx1" disabled=no !src-address }
	// remove [find where comment~"^geosteer " and !(comment~"^geosteer (foreign-mx1)(:|\$)")]
	// /ipv6 firewall nat
	// remove [find where comment~"^geosteer "]
	// /ip firewall address-list
	// remove [find where comment="geosteer" and list~"^geosteer-.*[.]v4[.]" and list!="geosteer-english.v4.hc8e5ef2692"]
	// /ipv6 firewall address-list
	// remove [find where comment="geosteer" and list~"^geosteer-.*[.]v6[.]"]
}

// A Router remembers what its last sync left, so the next sync of a
// changed plan confirms the router by counts and sends only the change.
func ExampleRouter_Apply_incremental() {
	srv, _ := routerostest.NewServer(routerostest.Options{})
	defer srv.Close()

	r := &routeros.Router{Addr: srv.Addr(), User: "admin", Mode: routeros.InPlace}
	p := examplePlan()
	if _, err := r.Apply(context.Background(), p, backend.ApplyOptions{}); err != nil {
		panic(err)
	}

	var b cidr.Builder
	b.AddSet(p.Sets[0].Addrs)
	b.Add(netip.MustParseAddr("198.51.100.9"))
	p.Sets[0].Addrs, _ = b.Set()
	before := srv.Stats()
	rep, err := r.Apply(context.Background(), p, backend.ApplyOptions{})
	if err != nil {
		panic(err)
	}
	after := srv.Stats()
	fmt.Println(rep.Changes)
	fmt.Println(after.ByCommand["/ip/firewall/address-list/add"]-before.ByCommand["/ip/firewall/address-list/add"], "add,",
		after.ByCommand["/ip/firewall/address-list/print"]-before.ByCommand["/ip/firewall/address-list/print"], "count queries")
	// Three counts confirm what the Router remembers (the tagged entries,
	// the list's enabled ones, its newest entry still under its id), one
	// counts the list after the add; nothing else of the list is read.

	// Output:
	// [list geosteer-english.v4.1: +1 -0 in place]
	// 1 add, 4 count queries
}
