package routerostest

import (
	"fmt"
	"testing"
)

// BenchmarkCountScan: a count-only print with three query words over a
// 100,000-entry address list, as a sync's memo check sends; the simulator
// walks every entry, as a router counting does.
func BenchmarkCountScan(b *testing.B) {
	srv := newServer(b, Options{})
	var es []Entry
	for i := range 100_000 {
		es = append(es, Entry{List: "big", Address: fmt.Sprintf("%d.%d.%d.0/24", 1+i>>16, (i>>8)&255, i&255), Comment: "geosteer"})
	}
	if _, err := srv.Seed("ip", es...); err != nil {
		b.Fatal(err)
	}
	r := dialRaw(b, srv)
	r.login()
	for b.Loop() {
		r.send("/ip/firewall/address-list/print", "=count-only=", "?list=big", "?comment=geosteer", "?disabled=false")
		if w := r.read(); w[0] != "!done" || w[1] != "=ret=100000" {
			b.Fatalf("%q", w)
		}
	}
}
