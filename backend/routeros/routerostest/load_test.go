package routerostest

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestLoad100k pipelines 100,000 adds over one connection (a window of 256
// tagged commands, as a real sync would) and then checks that a duplicate
// add at full size costs about as much as one into an empty list: the
// duplicate check is an O(1) index lookup, not a scan.
func TestLoad100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100k load in -short mode")
	}
	srv := newServer(t, Options{})
	r := dialRaw(t, srv)
	r.login()
	const n, window = 100_000, 256
	addr := func(i int) string { return fmt.Sprintf("=address=%d.%d.%d.0/24", 1+i>>16, (i>>8)&255, i&255) }
	start := time.Now()
	sent, got := 0, 0
	for got < n {
		var buf []byte
		for sent < n && sent-got < window {
			buf = appendSentence(buf, "/ip/firewall/address-list/add", "=list=big", addr(sent), ".tag="+strconv.Itoa(sent))
			sent++
		}
		if len(buf) > 0 {
			if _, err := r.nc.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
		if w := r.read(); w[0] != "!done" {
			t.Fatalf("add: %q", w)
		}
		got++
	}
	load := time.Since(start)
	t.Logf("100,000 pipelined adds: %v (%.1f µs/add)", load, float64(load.Microseconds())/n)
	if load > 20*time.Second {
		t.Errorf("load took %v", load)
	}
	if k := srv.AddressListLen("ip"); k != n {
		t.Fatalf("%d entries", k)
	}

	// Duplicate detection at 100k vs at 0 entries, through the sync client.
	timeDups := func(s *Server) time.Duration {
		c := client(t, s)
		const k = 2000
		start := time.Now()
		for i := 0; i < k; i++ {
			c.Run("/ip/firewall/address-list/add", "=list=big", addr(i%1000))
		}
		return time.Since(start) / k
	}
	small := newServer(t, Options{})
	sc := client(t, small)
	for i := 0; i < 1000; i++ {
		run(t, sc, "/ip/firewall/address-list/add", "=list=big", addr(i))
	}
	dSmall, dBig := timeDups(small), timeDups(srv)
	t.Logf("duplicate add round trip: %v at 1k entries, %v at 100k", dSmall, dBig)
	if dBig > 10*dSmall+100*time.Microsecond {
		t.Errorf("duplicate add at 100k (%v) much slower than at 1k (%v): not O(1)", dBig, dSmall)
	}

	// Removing with comma ids and routing against the big list stay fast.
	start = time.Now()
	c := client(t, srv)
	run(t, c, "/ip/firewall/address-list/remove", "=.id=*1,*2,*3,*186A0")
	if n := run(t, c, "/ip/firewall/address-list/print", "=count-only=").Done.Map["ret"]; n != strconv.Itoa(100_000-4) {
		t.Errorf("count after remove %s", n)
	}
	t.Logf("remove + count-only at 100k: %v", time.Since(start))
}

// BenchmarkAdd measures one sync add round trip through go-routeros.
func BenchmarkAdd(b *testing.B) {
	srv := newServer(b, Options{})
	c := client(b, srv)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		run(b, c, "/ip/firewall/address-list/add", "=list=b", fmt.Sprintf("=address=%d.%d.%d.%d", 1+i>>24&127, i>>16&255, i>>8&255, i&255))
	}
}
