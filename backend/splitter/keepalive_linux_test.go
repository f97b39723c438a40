package splitter

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKeepAlive: both sockets of a session have TCP keep-alive off while
// the idle timeout reaps dead peers, and on (Go's default) without it;
// and both have TCP_NODELAY (the event loop's accepted sockets inherit it
// from the listener).
func TestKeepAlive(t *testing.T) { forEngines(t, testKeepAlive) }

func testKeepAlive(t *testing.T, eng Engine) {
	for _, tc := range []struct {
		idle time.Duration
		want int
	}{{0, 0}, {time.Minute, 0}, {-1, 1}} {
		tb := newTestbed(t, Options{Engine: eng, IdleTimeout: tc.idle})
		c := dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
		c.line() // the banner: the session is relaying
		socks := sessionSockets(t, tb.s)
		if len(socks) != 2 {
			t.Fatalf("idle %v: %d sockets relaying, want 2", tc.idle, len(socks))
		}
		for side, fd := range socks {
			for _, opt := range []struct {
				name       string
				level, opt int
				want       int
			}{
				{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, tc.want},
				{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
			} {
				got, err := syscall.GetsockoptInt(fd, opt.level, opt.opt)
				if err != nil {
					t.Fatal(err)
				}
				if got != 0 {
					got = 1
				}
				if got != opt.want {
					t.Errorf("idle %v: %s socket %s = %d, want %d", tc.idle, side, opt.name, got, opt.want)
				}
			}
		}
		c.cmd("QUIT")
	}
}

// sessionSockets returns the fds of the sockets of the splitter's relaying
// sessions, by side ("client", "server"); the caller keeps them open.
func sessionSockets(t *testing.T, s *Splitter) map[string]int {
	m := map[string]int{}
	if s.el != nil {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, lp := range s.el.loops {
			wg.Add(1)
			lp.do(func() {
				defer wg.Done()
				for ss := range lp.sessions {
					if ss.phase == phaseRelay {
						mu.Lock()
						m["client"], m["server"] = ss.c.fd, ss.sv.fd
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return m
	}
	for i := range s.conns.shards {
		sh := &s.conns.shards[i]
		sh.mu.Lock()
		for ss := range sh.m {
			if ss.server != nil {
				for side, c := range map[string]*net.TCPConn{"client": ss.client, "server": ss.server} {
					rc, err := c.SyscallConn()
					if err != nil {
						t.Fatal(err)
					}
					rc.Control(func(fd uintptr) { m[side] = int(fd) })
				}
			}
		}
		sh.mu.Unlock()
	}
	return m
}
