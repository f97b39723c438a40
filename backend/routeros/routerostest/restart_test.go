package routerostest

import (
	"reflect"
	"testing"
)

// TestRestart: a reboot drops dynamic entries and the connection, and
// numbers the remaining entries again from *1, in insertion order; an
// add after it takes the next id.
func TestRestart(t *testing.T) {
	srv := newServer(t, Options{})
	c := client(t, srv)
	for _, w := range [][]string{
		{"=list=a", "=address=192.0.2.1"},
		{"=list=a", "=address=192.0.2.2", "=timeout=1h"},
		{"=list=b", "=address=192.0.2.3", "=comment=x"},
		{"=list=a", "=address=192.0.2.4", "=disabled=yes"},
	} {
		run(t, c, append([]string{"/ip/firewall/address-list/add"}, w...)...)
	}
	run(t, c, "/ip/firewall/address-list/remove", "=.id=*1")
	srv.Restart()
	if _, err := c.Run("/ip/firewall/address-list/print"); err == nil {
		t.Error("the connection survived the restart")
	}
	c = client(t, srv)
	run(t, c, "/ip/firewall/address-list/add", "=list=a", "=address=192.0.2.5")
	var got []Entry
	for _, e := range srv.AddressList("ip", "") {
		got = append(got, Entry{ID: e.ID, List: e.List, Address: e.Address, Comment: e.Comment, Disabled: e.Disabled})
	}
	want := []Entry{
		{ID: "*1", List: "b", Address: "192.0.2.3", Comment: "x"},
		{ID: "*2", List: "a", Address: "192.0.2.4", Disabled: true},
		{ID: "*3", List: "a", Address: "192.0.2.5"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after the restart\n got %+v\nwant %+v", got, want)
	}
	if trap := trapOf(t, c, "/ip/firewall/address-list/add", "=list=b", "=address=192.0.2.3"); trap == "" {
		t.Error("no duplicate trap after the restart")
	}
}
