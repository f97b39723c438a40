package routerostest

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3"
)

func TestLogin(t *testing.T) {
	srv := newServer(t, Options{Users: map[string]string{"api": "pw"}})
	if _, err := clientAs(t, srv, "api", "pw"); err != nil {
		t.Fatalf("good login: %v", err)
	}
	for _, up := range [][2]string{{"api", "bad"}, {"nobody", "pw"}} {
		c, err := clientAs(t, srv, up[0], up[1])
		var de *routeros.DeviceError
		if !errors.As(err, &de) || de.Sentence.Map["message"] != trapLogin {
			t.Fatalf("bad login %v: %v", up, err)
		}
		// The session stays open after a failed login; a retry works.
		if err := c.Login("api", "pw"); err != nil {
			t.Fatalf("retry after failure: %v", err)
		}
	}
}

func TestLegacyChallengeLogin(t *testing.T) {
	srv := newServer(t, Options{Users: map[string]string{"u": "p"}})
	r := dialRaw(t, srv)
	r.send("/login")
	got := r.read()
	if got[0] != "!done" || !strings.HasPrefix(got[1], "=ret=") || len(got[1]) != 5+32 {
		t.Fatalf("challenge: %q", got)
	}
	ch, _ := hex.DecodeString(strings.TrimPrefix(got[1], "=ret="))
	sum := md5.Sum(append(append([]byte{0}, "p"...), ch...))
	r.send("/login", "=name=u", "=response=00"+hex.EncodeToString(sum[:]))
	if got := r.until(); !slices.Equal(got, []string{"!done"}) {
		t.Fatalf("challenge response: %q", got)
	}
	r.send("/system/resource/print", "=.proplist=platform")
	if got := r.until(); !slices.Equal(got, []string{"!re =platform=MikroTik", "!done"}) {
		t.Fatalf("after legacy login: %q", got)
	}
}

func TestPreLoginIsFatal(t *testing.T) {
	srv := newServer(t, Options{})
	r := dialRaw(t, srv)
	r.send("/ip/firewall/address-list/print")
	if got := r.read(); strings.Join(got, " ") != "!fatal not logged in" {
		t.Fatalf("got %q", got)
	}
	if _, err := readSentence(r.br); err == nil {
		t.Fatal("connection still open after !fatal")
	}
}

func TestAddDuplicateRemove(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	const m = "/ip/firewall/address-list/"
	var ids []string
	for _, a := range []string{"192.0.2.1", "198.51.100.0/24", "203.0.113.7/32"} {
		ids = append(ids, run(t, c, m+"add", "=list=L", "=address="+a, "=comment=c").Done.Map["ret"])
	}
	if want := []string{"*1", "*2", "*3"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	// Duplicates are detected on the normalised address within one list.
	for _, a := range []string{"192.0.2.1/32", "198.51.100.0-198.51.100.255", "203.0.113.7"} {
		if msg := trapOf(t, c, m+"add", "=list=L", "=address="+a); msg != trapDuplicate {
			t.Errorf("dup %s: %q", a, msg)
		}
	}
	run(t, c, m+"add", "=list=other", "=address=192.0.2.1")
	run(t, c, m+"remove", "=.id=*1,*3")
	var got []string
	for _, e := range srv.AddressList("ip", "") {
		got = append(got, e.ID+" "+e.List+" "+e.Address)
	}
	if want := []string{"*2 L 198.51.100.0/24", "*4 other 192.0.2.1"}; !slices.Equal(got, want) {
		t.Fatalf("after remove %q, want %q", got, want)
	}
	// Ids are never reused (failed adds take none); a removed address may be added again.
	if id := run(t, c, m+"add", "=list=L", "=address=192.0.2.1").Done.Map["ret"]; id != "*5" {
		t.Errorf("re-add id %s", id)
	}
	if msg := trapOf(t, c, m+"remove", "=.id=*99"); msg != trapNoSuch {
		t.Errorf("remove missing: %q", msg)
	}
}

func TestRemovePartialVsAllOrNothing(t *testing.T) {
	for _, aon := range []bool{false, true} {
		srv := newServer(t, Options{RemoveAllOrNothing: aon})
		c := client(t, srv)
		ids, _ := srv.Seed("ip", Entry{List: "L", Address: "10.0.0.1"}, Entry{List: "L", Address: "10.0.0.2"}, Entry{List: "L", Address: "10.0.0.3"})
		msg := trapOf(t, c, "/ip/firewall/address-list/remove", "=.id="+ids[0]+",*FF,"+ids[2])
		if msg != trapNoSuch {
			t.Fatalf("msg %q", msg)
		}
		want := 2 // partial: *1 removed, stops at *FF
		if aon {
			want = 3
		}
		if n := len(srv.AddressList("ip", "L")); n != want {
			t.Errorf("all-or-nothing=%v: %d entries left, want %d", aon, n, want)
		}
	}
}

func TestNormalisation(t *testing.T) {
	srv := newServer(t, Options{DNS: map[string][]netip.Addr{
		"mx.example.org": {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
	}})
	c := client(t, srv)
	for _, tc := range []struct{ fam, in, want, trap string }{
		{"ip", "192.0.2.1/32", "192.0.2.1", ""},
		{"ip", "192.168.0.0-192.168.1.255", "192.168.0.0/23", ""},
		{"ip", "10.0.0.5-10.0.0.5", "10.0.0.5", ""},
		{"ip", "10.0.0.1-10.0.0.6", "10.0.0.1-10.0.0.6", ""},
		{"ip", "10.1.2.3/16", "10.1.0.0/16", ""},
		{"ip", "2001:db8::1", "", "failure: 2001:db8::1 is not a valid dns name"},
		{"ip", "mx.example.org", "mx.example.org", ""},
		{"ip", "bad..name", "", "failure: bad..name is not a valid dns name"},
		{"ipv6", "2001:db8::1", "2001:db8::1/128", ""},
		{"ipv6", "2001:db8::1/48", "2001:db8::/48", ""},
		{"ipv6", "192.0.2.1", "", "failure: 192.0.2.1 is not a valid dns name"},
	} {
		cmd := "/" + tc.fam + "/firewall/address-list/add"
		if tc.trap != "" {
			if msg := trapOf(t, c, cmd, "=list=N", "=address="+tc.in); msg != tc.trap {
				t.Errorf("%s %s: trap %q, want %q", tc.fam, tc.in, msg, tc.trap)
			}
			continue
		}
		id := run(t, c, cmd, "=list=N", "=address="+tc.in).Done.Map["ret"]
		r := run(t, c, "/"+tc.fam+"/firewall/address-list/print", "?.id="+id, "=.proplist=address")
		if len(r.Re) != 1 || r.Re[0].Map["address"] != tc.want {
			t.Errorf("%s %s: printed %v, want %s", tc.fam, tc.in, r.Re, tc.want)
		}
	}
	// The DNS entry is static with a dynamic child of its own family.
	var dyn []string
	for _, e := range srv.AddressList("ip", "N") {
		if e.Dynamic {
			dyn = append(dyn, e.Address+" parent "+e.Parent)
		}
	}
	if len(dyn) != 1 || !strings.HasPrefix(dyn[0], "192.0.2.10 parent *") {
		t.Errorf("dns children %q", dyn)
	}
	if _, _, _, ok := srv.Route(netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2.2.2.2"), 25); ok {
		t.Error("route without rules matched")
	}
}

func TestTimeoutIsDynamic(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	run(t, c, "/ip/firewall/address-list/add", "=list=T", "=address=192.0.2.5", "=timeout=1d")
	r := run(t, c, "/ip/firewall/address-list/print", "?list=T")
	if len(r.Re) != 1 || r.Re[0].Map["dynamic"] != "true" || r.Re[0].Map["timeout"] == "" {
		t.Fatalf("%v", r.Re)
	}
	if msg := trapOf(t, c, "/ip/firewall/address-list/add", "=list=T", "=address=192.0.2.6", "=timeout=soon"); msg == "" {
		t.Error("bad timeout accepted")
	}
}

func TestPrintQueries(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	srv.Seed("ip",
		Entry{List: "a", Address: "10.0.0.1", Comment: "x"},
		Entry{List: "b", Address: "10.0.0.2"},
		Entry{List: "a", Address: "10.0.0.3", Disabled: true},
		Entry{List: "c", Address: "10.0.0.4", Comment: "x"},
		Entry{List: "a", Address: "10.0.0.1"}, // an old duplicate
	)
	const p = "/ip/firewall/address-list/print"
	addrs := func(r *routeros.Reply) string {
		var s []string
		for _, re := range r.Re {
			s = append(s, re.Map[".id"]+"="+re.Map["address"])
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		q    []string
		want string
	}{
		{nil, "*1=10.0.0.1 *2=10.0.0.2 *3=10.0.0.3 *4=10.0.0.4 *5=10.0.0.1"},
		{[]string{"?list=a"}, "*1=10.0.0.1 *3=10.0.0.3 *5=10.0.0.1"},
		{[]string{"?=list=a", "?disabled=false"}, "*1=10.0.0.1 *5=10.0.0.1"},
		{[]string{"?comment"}, "*1=10.0.0.1 *4=10.0.0.4"},
		{[]string{"?-comment"}, "*2=10.0.0.2 *3=10.0.0.3 *5=10.0.0.1"},
		{[]string{"?list=b", "?list=c", "?#|"}, "*2=10.0.0.2 *4=10.0.0.4"},
		{[]string{"?list=a", "?#!"}, "*2=10.0.0.2 *4=10.0.0.4"},
		{[]string{"?list=a", "?comment", "?#&!"}, "*2=10.0.0.2 *3=10.0.0.3 *4=10.0.0.4 *5=10.0.0.1"},
		{[]string{"?list=a", "?list=b", "?#0"}, ""},  // a ∧ b ∧ a
		{[]string{"?list=b", "?#.|"}, "*2=10.0.0.2"}, // b ∨ b
		{[]string{"?>.id=*2", "?<.id=*5"}, "*3=10.0.0.3 *4=10.0.0.4"},
	} {
		r := run(t, c, append([]string{p, "=.proplist=.id,address"}, tc.q...)...)
		if got := addrs(r); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.q, got, tc.want)
		}
	}
	r := run(t, c, p, "=.proplist=address,list")
	if len(r.Re[0].List) != 2 || r.Re[0].List[0].Key != "address" {
		t.Errorf("proplist order: %v", r.Re[0].List)
	}
	if n := run(t, c, p, "=count-only=", "?list=a").Done.Map["ret"]; n != "3" {
		t.Errorf("count-only: %s", n)
	}
	if msg := trapOf(t, c, p, "?#|"); msg != trapQuery {
		t.Errorf("stack underflow: %q", msg)
	}
	// getall is an alias of print.
	if r := run(t, c, "/ip/firewall/address-list/getall", "?list=b"); len(r.Re) != 1 {
		t.Errorf("getall: %v", r.Re)
	}
}

func TestSetEnableDisableUnset(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	const m = "/ip/firewall/address-list/"
	run(t, c, m+"add", "=list=L", "=address=10.0.0.1", "=comment=keep")
	run(t, c, m+"add", "=list=L", "=address=10.0.0.2")
	if msg := trapOf(t, c, m+"set", "=.id=*2", "=address=10.0.0.1/32"); msg != trapDuplicate {
		t.Errorf("set to duplicate: %q", msg)
	}
	run(t, c, m+"set", "=.id=*2", "=address=10.0.0.3", "=comment=new")
	run(t, c, m+"disable", "=.id=*1,*2")
	run(t, c, m+"set", "=.id=*1", "=!comment=")
	run(t, c, m+"enable", "=numbers=*2")
	got := srv.AddressList("ip", "L")
	if got[0].Comment != "" || !got[0].Disabled || got[1].Address != "10.0.0.3" || got[1].Disabled || got[1].Comment != "new" {
		t.Fatalf("%+v", got)
	}
	run(t, c, m+"unset", "=numbers=*2", "=value-name=comment")
	if srv.AddressList("ip", "L")[1].Comment != "" {
		t.Error("unset comment")
	}
	// The old address may now be added again: the index followed the set.
	run(t, c, m+"add", "=list=L", "=address=10.0.0.2")
	if msg := trapOf(t, c, m+"add", "=list=L", "=address=10.0.0.3"); msg != trapDuplicate {
		t.Errorf("dup of set address: %q", msg)
	}
	if msg := trapOf(t, c, m+"add", "=list=L", "=address=10.0.0.9", "=bogus=1"); msg != trapUnknown+"bogus" {
		t.Errorf("unknown param: %q", msg)
	}
}

func TestEmptyReplies(t *testing.T) {
	for _, empty := range []bool{false, true} {
		srv := newServer(t, Options{EmptyReplies: empty})
		r := dialRaw(t, srv)
		r.login()
		r.send("/ip/firewall/address-list/print", "?list=none", ".tag=t1")
		got := r.until()
		want := []string{"!done .tag=t1"}
		if empty {
			want = []string{"!empty .tag=t1", "!done .tag=t1"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("empty=%v: %q, want %q", empty, got, want)
		}
		// go-routeros v3.0.1 copes with !empty in sync mode.
		c := client(t, srv)
		if rep := run(t, c, "/ip/firewall/address-list/print"); len(rep.Re) != 0 {
			t.Errorf("re %v", rep.Re)
		}
	}
}

func TestTagsAndUnknownCommands(t *testing.T) {
	srv := newServer(t, Options{})
	r := dialRaw(t, srv)
	r.login()
	r.send("/ip/firewall/address-list/add", "=list=L", "=address=10.0.0.1", ".tag=a")
	r.send("/ip/firewall/address-list/add", "=list=L", "=address=10.0.0.1", ".tag=b")
	r.send("/ip/firewall/address-list/frobnicate")
	r.send("/ip/adress/print", ".tag=c")
	want := [][]string{
		{"!done =ret=*1 .tag=a"},
		{"!trap =message=failure: already have such entry .tag=b", "!done .tag=b"},
		{"!trap =category=0 =message=no such command", "!done"},
		{"!trap =category=0 =message=no such command or directory (adress) .tag=c", "!trap =message=no such command prefix .tag=c", "!done .tag=c"},
	}
	for _, w := range want {
		if got := r.until(); !slices.Equal(got, w) {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	r.send("/quit")
	if got := r.read(); strings.Join(got, " ") != "!fatal session terminated on request" {
		t.Errorf("quit: %q", got)
	}
}

func TestNATOrder(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	const m = "/ip/firewall/nat/"
	add := func(extra ...string) string {
		return run(t, c, append([]string{m + "add", "=chain=dstnat", "=action=dst-nat", "=protocol=tcp", "=dst-port=25"}, extra...)...).Done.Map["ret"]
	}
	a := add("=to-addresses=10.0.0.1", "=comment=a")
	b := add("=to-addresses=10.0.0.2", "=comment=b")
	top := add("=to-addresses=10.0.0.3", "=comment=top", "=place-before="+a)
	order := func() string {
		var s []string
		for _, r := range srv.NATRules("ip") {
			s = append(s, r.Props["comment"])
			if _, ok := r.Props["place-before"]; ok {
				t.Error("place-before stored")
			}
		}
		return strings.Join(s, ",")
	}
	if got := order(); got != "top,a,b" {
		t.Fatalf("after place-before: %s", got)
	}
	run(t, c, m+"move", "=numbers="+top, "=destination="+b)
	if got := order(); got != "a,top,b" {
		t.Errorf("after move: %s", got)
	}
	run(t, c, m+"move", "=numbers="+a+","+top)
	if got := order(); got != "b,a,top" {
		t.Errorf("after move to end: %s", got)
	}
	// Printed order follows the global order.
	r := run(t, c, m+"print", "=.proplist=.id,comment")
	if len(r.Re) != 3 || r.Re[0].Map[".id"] != b || r.Re[2].Map["comment"] != "top" {
		t.Errorf("print: %v", r.Re)
	}
	if msg := trapOf(t, c, m+"add", "=chain=dstnat", "=action=dst-nat", "=dst-port=25"); msg != trapPorts {
		t.Errorf("dst-port without protocol: %q", msg)
	}
	if msg := trapOf(t, c, m+"set", "=.id="+a, "=!protocol="); msg != trapPorts {
		t.Errorf("unset protocol under dst-port: %q", msg)
	}
	for _, pcc := range []string{"src-address:2/0", "!both-addresses:3/2"} {
		run(t, c, m+"add", "=chain=dstnat", "=action=accept", "=per-connection-classifier="+pcc)
	}
	for _, pcc := range []string{"src-address:2/2", "src-address", "nonsense:2/0", "src-address:0/0"} {
		if msg := trapOf(t, c, m+"add", "=chain=dstnat", "=per-connection-classifier="+pcc); msg == "" {
			t.Errorf("pcc %q accepted", pcc)
		}
	}
	run(t, c, m+"set", "=.id="+a, "=src-address-list=!english", "=!comment=")
	rules := srv.NATRules("ip")
	for _, r := range rules {
		if r.ID == a && (r.Props["src-address-list"] != "!english" || r.Props["comment"] != "") {
			t.Errorf("set: %v", r.Props)
		}
	}
	run(t, c, m+"disable", "=numbers="+b)
	run(t, c, m+"remove", "=numbers="+b)
	if len(srv.NATRules("ip")) != 4 {
		t.Error("remove")
	}
}

// TestRoute builds the wiki's layout, an "!english" override above a
// deterministic source split, and checks Route for every case.
func TestRoute(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	const m = "/ip/firewall/nat/"
	base := []string{"=chain=dstnat", "=action=dst-nat", "=protocol=tcp", "=dst-address=198.51.100.1", "=dst-port=25", "=to-ports=2525"}
	strict := run(t, c, append([]string{m + "add", "=src-address-list=!english", "=to-addresses=10.0.0.9"}, base...)...).Done.Map["ret"]
	low := run(t, c, append([]string{m + "add", "=src-address=0.0.0.0/1", "=to-addresses=10.0.0.1"}, base...)...).Done.Map["ret"]
	high := run(t, c, append([]string{m + "add", "=src-address=128.0.0.0/1", "=to-addresses=10.0.0.2"}, base...)...).Done.Map["ret"]
	run(t, c, "/ip/firewall/address-list/add", "=list=english", "=address=20.0.0.0/8")
	run(t, c, "/ip/firewall/address-list/add", "=list=english", "=address=200.0.0.0-200.0.0.255")
	dst := netip.MustParseAddr("198.51.100.1")
	for _, tc := range []struct {
		src  string
		port uint16
		to   string
		rule string
		ok   bool
	}{
		{"20.1.2.3", 25, "10.0.0.1", low, true},
		{"200.0.0.7", 25, "10.0.0.2", high, true},
		{"30.0.0.1", 25, "10.0.0.9", strict, true},
		{"20.1.2.3", 587, "198.51.100.1", "", false},
	} {
		to, port, rule, ok := srv.Route(netip.MustParseAddr(tc.src), dst, tc.port)
		if ok != tc.ok || rule != tc.rule || to.String() != tc.to || (ok && port != 2525) {
			t.Errorf("%s:%d → %s:%d by %s ok=%v; want %s by %s", tc.src, tc.port, to, port, rule, ok, tc.to, tc.rule)
		}
	}
	// Disabling the override sends everyone through the split.
	run(t, c, m+"disable", "=.id="+strict)
	if _, _, rule, _ := srv.Route(netip.MustParseAddr("30.0.0.1"), dst, 25); rule != low {
		t.Errorf("disabled override still matches: %s", rule)
	}
	// A disabled list entry no longer counts as english.
	run(t, c, m+"enable", "=.id="+strict)
	run(t, c, "/ip/firewall/address-list/disable", "=.id=*1")
	if _, _, rule, _ := srv.Route(netip.MustParseAddr("20.1.2.3"), dst, 25); rule != strict {
		t.Errorf("disabled entry still matches: %s", rule)
	}
}

func TestIPv6Menus(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	run(t, c, "/ipv6/firewall/address-list/add", "=list=english", "=address=2001:db8:1::/48")
	run(t, c, "/ipv6/firewall/nat/add", "=chain=dstnat", "=action=dst-nat", "=protocol=tcp", "=dst-port=25",
		"=src-address-list=english", "=to-addresses=2001:db8:ff::1")
	to, _, _, ok := srv.Route(netip.MustParseAddr("2001:db8:1::5"), netip.MustParseAddr("2001:db8::25"), 25)
	if !ok || to.String() != "2001:db8:ff::1" {
		t.Errorf("v6 route %v %v", to, ok)
	}
	if len(srv.AddressList("ip", "")) != 0 || len(srv.NATRules("ip")) != 0 {
		t.Error("v6 commands leaked into /ip")
	}
}

func TestCancelListen(t *testing.T) {
	srv := newServer(t, Options{})
	r := dialRaw(t, srv)
	r.login()
	r.send("/ip/firewall/address-list/listen", "=.proplist=address", ".tag=L")
	c := client(t, srv)
	run(t, c, "/ip/firewall/address-list/add", "=list=x", "=address=10.0.0.1")
	if got := strings.Join(r.read(), " "); got != "!re =address=10.0.0.1 .tag=L" {
		t.Fatalf("listen: %q", got)
	}
	r.send("/cancel", "=tag=L", ".tag=C")
	got := r.until()
	got = append(got, r.until()...)
	want := []string{"!trap =category=2 =message=interrupted .tag=L", "!done .tag=L", "!done .tag=C"}
	if !slices.Equal(got, want) {
		t.Fatalf("cancel: %q, want %q", got, want)
	}
}

func TestFaults(t *testing.T) {
	t.Run("disconnect", func(t *testing.T) {
		srv := newServer(t, Options{Fault: func(fc FaultContext) Fault {
			if fc.N == 3 {
				return Fault{Action: FaultDisconnect}
			}
			return Fault{}
		}})
		c := client(t, srv) // command 1 is /login
		run(t, c, "/system/resource/print")
		if _, err := c.Run("/system/resource/print"); err == nil {
			t.Fatal("no error after disconnect")
		}
	})
	t.Run("fatal", func(t *testing.T) {
		srv := newServer(t, Options{Fault: func(fc FaultContext) Fault {
			if fc.Command.Word == "/ip/firewall/nat/print" {
				return Fault{Action: FaultFatal, Reason: "router rebooting"}
			}
			return Fault{}
		}})
		r := dialRaw(t, srv)
		r.login()
		r.send("/ip/firewall/nat/print")
		if got := strings.Join(r.read(), " "); got != "!fatal router rebooting" {
			t.Fatalf("%q", got)
		}
		if _, err := readSentence(r.br); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("after fatal: %v", err)
		}
	})
	t.Run("stall", func(t *testing.T) {
		srv := newServer(t, Options{Fault: func(fc FaultContext) Fault {
			if fc.N == 2 {
				return Fault{Action: FaultStall, Delay: 300 * time.Millisecond}
			}
			return Fault{}
		}})
		c := client(t, srv)
		start := time.Now()
		run(t, c, "/system/resource/print")
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("stalled command answered after %v", d)
		}
	})
	t.Run("hang-then-cancel", func(t *testing.T) {
		srv := newServer(t, Options{Fault: func(fc FaultContext) Fault {
			if fc.Command.Tag == "h" {
				return Fault{Action: FaultHang}
			}
			return Fault{}
		}})
		r := dialRaw(t, srv)
		r.login()
		r.send("/ip/firewall/address-list/print", ".tag=h")
		r.send("/system/resource/print", "=.proplist=board-name", ".tag=x")
		if got := r.until(); !slices.Equal(got, []string{"!re =board-name=CHR .tag=x", "!done .tag=x"}) {
			t.Fatalf("%q", got)
		}
		r.send("/cancel")
		got := append(r.until(), r.until()...)
		if !slices.Equal(got, []string{"!trap =category=2 =message=interrupted .tag=h", "!done .tag=h", "!done"}) {
			t.Fatalf("%q", got)
		}
	})
	t.Run("control-byte", func(t *testing.T) {
		srv := newServer(t, Options{})
		r := dialRaw(t, srv)
		r.login()
		r.nc.Write([]byte{0xF8})
		if got := r.read(); got[0] != "!fatal" {
			t.Fatalf("%q", got)
		}
	})
	t.Run("drop-all", func(t *testing.T) {
		srv := newServer(t, Options{})
		c := client(t, srv)
		srv.DropConnections()
		if _, err := c.Run("/system/resource/print"); err == nil {
			t.Fatal("no error after DropConnections")
		}
	})
}

func TestMaxSessions(t *testing.T) {
	srv := newServer(t, Options{MaxSessions: 2})
	client(t, srv)
	client(t, srv)
	if _, err := clientAs(t, srv, "admin", ""); err == nil {
		t.Fatal("third session accepted")
	}
	if st := srv.Stats(); st.Rejected != 1 {
		t.Errorf("rejected %d", st.Rejected)
	}
}

// TestPipelinedLatency sends 1,000 tagged commands back to back over the
// wire with 1 ms latency. Replies are in flight concurrently, so the batch
// takes about one latency plus processing, not 1,000 ms.
func TestPipelinedLatency(t *testing.T) {
	srv := newServer(t, Options{Latency: time.Millisecond})
	r := dialRaw(t, srv)
	r.login()
	const n = 1000
	start := time.Now()
	go func() {
		var buf []byte
		for i := 0; i < n; i++ {
			buf = appendSentence(buf, "/ip/firewall/address-list/add", "=list=p", fmt.Sprintf("=address=10.0.%d.%d", i/256, i%256), fmt.Sprintf(".tag=%d", i))
		}
		r.nc.Write(buf)
	}()
	seen := map[string]bool{}
	for len(seen) < n {
		w := r.read()
		if w[0] != "!done" {
			t.Fatalf("%q", w)
		}
		seen[w[len(w)-1]] = true
	}
	d := time.Since(start)
	t.Logf("%d pipelined adds with 1 ms latency: %v", n, d)
	// Serialized latency alone would be 1 s; allow generous slack for
	// loaded CI machines while still catching serialization.
	if d > 500*time.Millisecond {
		t.Errorf("pipelined batch took %v; latency is being serialized", d)
	}
	// The sync client pays the latency on every command.
	c := client(t, srv)
	start = time.Now()
	for i := 0; i < 20; i++ {
		run(t, c, "/system/resource/print", "=.proplist=uptime")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("20 sync round trips took %v, less than 20 latencies", d)
	}
}

func TestCommandCostSerialized(t *testing.T) {
	srv := newServer(t, Options{CommandCost: 2 * time.Millisecond})
	start := time.Now()
	done := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			c := client(t, srv)
			for j := 0; j < 10; j++ {
				c.Run("/system/resource/print")
			}
		}()
	}
	for i := 0; i < 4; i++ {
		<-done
	}
	// 4 logins + 40 commands on one CPU at 2 ms each.
	if d := time.Since(start); d < 88*time.Millisecond {
		t.Errorf("44 commands took %v; CPU cost not serialized", d)
	}
	st := srv.Stats()
	if st.ByCommand["/system/resource/print"] != 40 || st.Commands != 44 {
		t.Errorf("stats %+v", st)
	}
}

// TestEntryGet: queries read an entry's properties without rendering it;
// every property must read as print shows it, and absent ones as absent.
func TestEntryGet(t *testing.T) {
	es := []*addrEntry{
		{id: 0x1a, list: "l", addr: prefixAddr(netip.MustParsePrefix("192.0.2.0/24")), created: "2025-01-01 00:00:00"},
		{id: 7, list: "l", addr: prefixAddr(netip.MustParsePrefix("2001:db8::/32")), comment: "c", hasCmt: true, timeout: "1d", dynamic: true, disabled: true},
		{id: 8, list: "", comment: "", hasCmt: true},
	}
	keys := []string{".id", "list", "address", "creation-time", "timeout", "dynamic", "disabled", "comment", "nope", ""}
	for _, e := range es {
		it := e.item()
		for _, k := range keys {
			v1, ok1 := e.get(k)
			v2, ok2 := it.get(k)
			if v1 != v2 || ok1 != ok2 {
				t.Errorf("entry %d: get(%q) = %q,%v; item has %q,%v", e.id, k, v1, ok1, v2, ok2)
			}
		}
	}
}
