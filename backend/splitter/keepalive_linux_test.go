package splitter

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestKeepAlive: both sockets of a session have TCP keep-alive off while
// the idle timeout reaps dead peers, and on (Go's default) without it.
func TestKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		idle time.Duration
		want int
	}{{0, 0}, {time.Minute, 0}, {-1, 1}} {
		tb := newTestbed(t, Options{IdleTimeout: tc.idle})
		c := dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
		c.line() // the banner: the session is relaying
		var client, server *net.TCPConn
		for i := range tb.s.conns.shards {
			sh := &tb.s.conns.shards[i]
			sh.mu.Lock()
			for ss := range sh.m {
				client, server = ss.client, ss.server
			}
			sh.mu.Unlock()
		}
		if server == nil {
			t.Fatalf("idle %v: no session relaying", tc.idle)
		}
		for _, side := range []struct {
			name string
			c    *net.TCPConn
		}{{"client", client}, {"server", server}} {
			rc, err := side.c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			rc.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
			if gerr != nil {
				t.Fatal(gerr)
			}
			if got != tc.want {
				t.Errorf("idle %v: %s socket SO_KEEPALIVE = %d, want %d", tc.idle, side.name, got, tc.want)
			}
		}
		c.cmd("QUIT")
	}
}
