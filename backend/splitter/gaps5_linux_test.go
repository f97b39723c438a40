package splitter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// Tests of the relay's timers and error paths under a slow or stuck peer,
// where the splitter's writes complete only in part. The kernel gives
// loopback sockets send buffers of a megabyte or more, so a relay there
// writes in part only after megabytes; the tests shrink the splitter's
// send buffer on the side under test (SO_SNDBUF, as memory pressure or a
// small tcp_wmem would) and give the slow peer a small receive window, so
// that a few kilobytes fill them and every write after that is partial.

// shrinkSendBuf sets the send buffer of the splitter's socket on side
// ("client" or "server") of its one relaying session to the minimum.
func shrinkSendBuf(t *testing.T, s *Splitter, side string) {
	t.Helper()
	var fds map[string]int
	waitFor(t, 5*time.Second, "the session to relay", func() bool {
		fds = sessionSockets(t, s)
		return len(fds) == 2
	})
	if err := syscall.SetsockoptInt(fds[side], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
}

// dialSmallWindow connects to s's mx1 with a 4 KiB receive buffer, set
// before connect so that the window is small from the handshake on.
func dialSmallWindow(t *testing.T, s *Splitter) *net.TCPConn {
	t.Helper()
	to, _ := s.ListenAddr(mx1)
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.DialContext(t.Context(), "tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// slowRead reads r in pieces of at most piece bytes, one per every (a
// steady reader), until it has want bytes or the stream ends; with stall,
// it returns after its first piece (the caller then reads no more). It
// returns the bytes read and when it last read.
func slowRead(r io.Reader, want, piece int, every time.Duration, stall bool) (int, time.Time) {
	buf := make([]byte, piece)
	n := 0
	last := time.Now()
	for n < want {
		m, err := r.Read(buf)
		n += m
		last = time.Now()
		if err != nil {
			break
		}
		if stall {
			return n, last
		}
		time.Sleep(every)
	}
	return n, last
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestSlowReaderIdle: a relay whose destination reads slowly but steadily
// outlives the idle timeout, however long the transfer takes, because
// every write that moves bytes (partial ones included) counts as
// activity; one whose destination stops reading is cut at about the idle
// timeout after its last byte moved, counted and logged as an idle
// timeout. Both directions, and both ways the event loop moves bytes:
// short reads written through its buffer (the bytes a partial write
// leaves are held and written as the destination drains), and bodies
// spliced through a pipe (what a partial splice leaves stays in the pipe).
func TestSlowReaderIdle(t *testing.T) { forEngines(t, testSlowReaderIdle) }

func testSlowReaderIdle(t *testing.T, eng Engine) {
	const idle = 250 * time.Millisecond
	cases := []struct {
		name  string
		down  bool // the target sends and the client reads slowly; else the other way
		size  int  // bytes sent, in one write
		piece int  // bytes per read of the steady reader
		every time.Duration
		stall bool
	}{
		// The readers' windows are 4 KiB: a read takes at most that.
		// Under 64 KiB: each read is short, so the event loop relays them
		// by read and write, and holds what a partial write leaves.
		{"up/commands/steady", false, 40000, 1 << 10, 20 * time.Millisecond, false},
		{"up/commands/stalled", false, 40000, 1 << 10, 20 * time.Millisecond, true},
		{"down/commands/steady", true, 40000, 1 << 10, 20 * time.Millisecond, false},
		{"down/commands/stalled", true, 40000, 1 << 10, 20 * time.Millisecond, true},
		// A body: the first full read switches the direction to splice,
		// and a pipe of up to 1 MiB drains at the reader's pace.
		{"up/body/steady", false, 3 << 19, 64 << 10, 5 * time.Millisecond, false},
		{"up/body/stalled", false, 3 << 19, 64 << 10, 5 * time.Millisecond, true},
		{"down/body/steady", true, 3 << 19, 64 << 10, 5 * time.Millisecond, false},
		{"down/body/stalled", true, 3 << 19, 64 << 10, 5 * time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if eng == EngineGoroutine && !tc.stall {
				// io.Copy's splice learns of progress only when a call
				// returns: one that drains its pipe into a slow reader
				// for longer than the idle timeout looks idle to the
				// other direction's check, and the session is cut.
				t.Skip("the goroutine engine sees a held pipe's progress only when its splice returns")
			}
			t.Parallel()
			var log lockedBuffer
			stop := make(chan struct{})
			defer close(stop)
			type result struct {
				n    int
				last time.Time
			}
			atTarget := make(chan result, 1)
			go1 := make(chan struct{})
			s := rawTargetSmallWindow(t, eng, Options{IdleTimeout: idle, Logger: debugLogger(&log)}, func(c *net.TCPConn) {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.WriteString(c, "220 ready\r\n")
				if !tc.down {
					n, last := slowRead(c, tc.size, tc.piece, tc.every, tc.stall)
					atTarget <- result{n, last}
					<-stop // a stalled reader keeps its connection open
					return
				}
				select {
				case <-go1:
				case <-stop:
					return
				}
				c.Write(make([]byte, tc.size))
				io.Copy(io.Discard, c)
			})
			c := dialSmallWindow(t, s)
			br := bufio.NewReader(c)
			if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "220") {
				t.Fatalf("banner: %q, %v", l, err)
			}
			t0 := time.Now()
			var n int
			var last time.Time
			if tc.down {
				shrinkSendBuf(t, s, "client")
				close(go1)
				n, last = slowRead(br, tc.size, tc.piece, tc.every, tc.stall)
			} else {
				shrinkSendBuf(t, s, "server")
				go c.Write(make([]byte, tc.size))
				select {
				case r := <-atTarget:
					n, last = r.n, r.last
				case <-time.After(20 * time.Second):
					t.Fatal("the target still reads after 20s")
				}
			}
			if !tc.stall {
				if n != tc.size {
					t.Fatalf("the reader got %d of %d bytes in %v: cut while bytes were moving (log:\n%s)", n, tc.size, time.Since(t0), log.String())
				}
				if d := time.Since(t0); d < 2*idle {
					t.Fatalf("the transfer took %v, not over twice the idle timeout %v: the test proves nothing", d, idle)
				}
				// (Not the idle timeouts counted: the session idles once
				// the last bytes are in the reader's buffer, and may be
				// cut while it reads them.)
				return
			}
			waitFor(t, 5*time.Second, "the stalled session to be cut", func() bool { return s.Stats().Active == 0 })
			// Polled every 10ms; the splitter's last write may follow the
			// reader's last read by a little, and the goroutine engine
			// checks every quarter of the timeout. The upper bound is
			// tight enough to tell a cut at twice the timeout.
			if d := time.Since(last); d < idle-50*time.Millisecond || d > 2*idle+150*time.Millisecond {
				t.Errorf("stalled session cut %v after the reader's last read, want about %v", d, idle)
			}
			if got := s.Stats().Timeouts["idle"]; got != 1 {
				t.Errorf("%d idle timeouts, want 1", got)
			}
			if l := log.String(); !strings.Contains(l, "relay ended") || !strings.Contains(l, "err=\"idle timeout\"") {
				t.Errorf("the cut is not logged as an idle timeout:\n%s", l)
			}
		})
	}
}

// TestSessionTimeoutWhileMoving: a relay whose bytes keep moving (a
// steady slow reader, every write partial) is still cut at the session
// timeout: activity postpones the idle deadline, never the session's.
func TestSessionTimeoutWhileMoving(t *testing.T) { forEngines(t, testSessionTimeoutWhileMoving) }

func testSessionTimeoutWhileMoving(t *testing.T, eng Engine) {
	const total = 600 * time.Millisecond
	got := make(chan int, 1)
	s := rawTargetSmallWindow(t, eng, Options{IdleTimeout: 10 * time.Second, SessionTimeout: total}, func(c *net.TCPConn) {
		io.WriteString(c, "220 ready\r\n")
		n, _ := slowRead(c, 1<<30, 4<<10, 10*time.Millisecond, false)
		got <- n
	})
	c := dial(t, s, netip.Addr{}, mx1)
	c.line()
	t0 := time.Now()
	shrinkSendBuf(t, s, "server")
	go c.c.Write(make([]byte, 8<<20))
	waitFor(t, 5*time.Second, "the session timeout", func() bool { return s.Stats().Active == 0 })
	d := time.Since(t0)
	n := <-got
	t.Logf("cut after %v, the target read %d bytes", d, n)
	if d < total-100*time.Millisecond || d > total+time.Second {
		t.Errorf("session cut after %v, want about %v", d, total)
	}
	if n < 32<<10 {
		t.Errorf("the target read %d bytes: the bytes were not moving", n)
	}
	if st := s.Stats().Timeouts; st["session"] != 1 || st["idle"] != 0 {
		t.Errorf("timeouts %v, want one session timeout and no idle one", st)
	}
}

// TestResetMidRelay: a reset (or a close meeting a reset) in the middle of
// a relay ends the session at once, not at the idle timeout, wherever the
// relay's bytes are: held for a full destination, in a splice pipe, or
// queued to read. The peer left sees its stream end and nothing stays
// counted as active. The steps are taken while the event loops are
// paused, so that the loop meets the reset in the write, splice or
// shutdown under test rather than in a read; the goroutine engine meets
// it as it comes.
func TestResetMidRelay(t *testing.T) { forEngines(t, testResetMidRelay) }

func testResetMidRelay(t *testing.T, eng Engine) {
	cases := []struct {
		name   string
		shrink string // the splitter's side whose send buffer is shrunk, if any
		drain  bool   // the target reads all it is sent; else nothing
		// before runs first, with the loops running; during with them
		// paused. Both get the client's and the target's connections.
		before, during func(c, tc *net.TCPConn)
		watch          string // whose stream must end: "client" or "target"
	}{
		{
			name: "target resets with bytes held for it", shrink: "server",
			before: func(c, _ *net.TCPConn) { c.Write(make([]byte, 40000)) }, // one short read, in part written
			during: func(_, tc *net.TCPConn) { rst(tc) },
			watch:  "client",
		},
		{
			// The send buffer as it is, so that the first read goes out
			// whole and what follows is spliced, until the pipe holds
			// what the target has no room for.
			name: "target resets with bytes in a splice pipe",
			before: func(c, _ *net.TCPConn) {
				go func() {
					c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					c.Write(make([]byte, 16<<20))
				}()
			},
			during: func(_, tc *net.TCPConn) { rst(tc) },
			watch:  "client",
		},
		{
			name: "client resets with a body queued to read", drain: true,
			during: func(c, _ *net.TCPConn) { c.Write(make([]byte, 300<<10)); rst(c) },
			watch:  "target",
		},
		{
			// The client's event first: the loop reads its EOF and
			// passes it on to a socket that has been reset.
			name:   "client half-closes as the target resets",
			during: func(c, tc *net.TCPConn) { c.CloseWrite(); time.Sleep(10 * time.Millisecond); rst(tc) },
			watch:  "client",
		},
		{
			name:   "client sends as the target resets",
			during: func(c, tc *net.TCPConn) { io.WriteString(c, "QUIT\r\n"); time.Sleep(10 * time.Millisecond); rst(tc) },
			watch:  "client",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conns := make(chan *net.TCPConn, 1)
			stop := make(chan struct{})
			defer close(stop)
			s := rawTargetSmallWindow(t, eng, Options{IdleTimeout: 30 * time.Second}, func(c *net.TCPConn) {
				io.WriteString(c, "220 ready\r\n")
				conns <- c
				if tc.drain {
					go io.Copy(io.Discard, c)
				}
				<-stop
			})
			c := dial(t, s, netip.Addr{}, mx1)
			if l := c.line(); !strings.HasPrefix(l, "220") {
				t.Fatalf("banner: %q", l)
			}
			target := <-conns
			if tc.shrink != "" {
				shrinkSendBuf(t, s, tc.shrink)
			}
			if tc.before != nil {
				tc.before(c.c, target)
				time.Sleep(100 * time.Millisecond) // the buffers fill
			}
			resume := pauseLoops(t, s)
			tc.during(c.c, target)
			time.Sleep(50 * time.Millisecond) // the events are queued
			resume()
			t0 := time.Now()
			waitFor(t, 2*time.Second, "the session to end", func() bool { return s.Stats().Active == 0 })
			t.Logf("session ended %v after the loops resumed", time.Since(t0))
			w := c.c
			if tc.watch == "target" {
				w = target
			}
			w.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err := io.Copy(io.Discard, w)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the %s's stream is still open 2s after the session ended", tc.watch)
			}
		})
	}
}

// TestStuckBothWays: a session whose every open direction is blocked
// writing to a peer that reads nothing — the other direction over after a
// half-close, or blocked the same way — is cut at about the idle timeout
// after its last byte moved, counted as idle, as a session that waits to
// read is: no direction waits in a read to notice, and neither a
// half-close nor a full buffer may leave the session to the session
// timeout.
func TestStuckBothWays(t *testing.T) { forEngines(t, testStuckBothWays) }

func testStuckBothWays(t *testing.T, eng Engine) {
	const idle = 250 * time.Millisecond
	cases := []struct {
		name string
		// Each side either half-closes at once or writes 16 MiB; neither
		// reads.
		clientFIN, targetFIN bool
	}{
		{"target FIN, the client sends to a target that reads nothing", false, true},
		{"client FIN, the target sends to a client that reads nothing", true, false},
		{"both send, neither reads", false, false},
	}
	send := func(c *net.TCPConn, fin bool) {
		if fin {
			c.CloseWrite()
			return
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		go c.Write(make([]byte, 16<<20))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			defer close(stop)
			s := rawTargetSmallWindow(t, eng, Options{IdleTimeout: idle, SessionTimeout: 20 * time.Second}, func(c *net.TCPConn) {
				io.WriteString(c, "220 ready\r\n")
				send(c, tc.targetFIN)
				<-stop
			})
			c := dialSmallWindow(t, s)
			br := bufio.NewReader(c)
			if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "220") {
				t.Fatalf("banner: %q, %v", l, err)
			}
			send(c, tc.clientFIN)
			t0 := time.Now()
			waitFor(t, 5*time.Second, "the stuck session to be cut", func() bool { return s.Stats().Active == 0 })
			// The buffers fill within milliseconds of t0, and the last
			// byte moves then.
			if d := time.Since(t0); d < idle-50*time.Millisecond || d > 2*idle+150*time.Millisecond {
				t.Errorf("stuck session cut after %v, want about %v", d, idle)
			}
			if st := s.Stats().Timeouts; st["idle"] != 1 || st["session"] != 0 {
				t.Errorf("timeouts %v, want one idle timeout", st)
			}
		})
	}
}

// TestBadFrontHeader: a trusted front whose header is not a TCP PROXY
// header — it ends, resets or runs over before its end, or carries a UDP
// connection — is closed without a word, counted as a proxy_header
// rejection and logged as a bad header; one whose header arrives in
// pieces with pauses (the loop waits for the rest) is routed on it.
func TestBadFrontHeader(t *testing.T) { forEngines(t, testBadFrontHeader) }

func testBadFrontHeader(t *testing.T, eng Engine) {
	udp, err := proxyproto.HeaderProxyFromAddrs(2, &net.UDPAddr{IP: net.IPv4(127, 1, 0, 9), Port: 40000}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25}).Format()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := proxyproto.HeaderProxyFromAddrs(1, &net.TCPAddr{IP: net.IPv4(127, 1, 0, 9), Port: 40000}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25}).Format()
	cases := []struct {
		name string
		send func(c *net.TCPConn)
		ok   bool   // routed (banner from a); else refused
		log  string // what the refusal's log line says
	}{
		{"ends mid-header", func(c *net.TCPConn) { io.WriteString(c, "PROXY TCP4 127.1"); c.CloseWrite() }, false, "unexpected EOF"},
		{"resets mid-header", func(c *net.TCPConn) {
			io.WriteString(c, "PROXY TCP4 127.1")
			time.Sleep(50 * time.Millisecond) // read first, so that the reset is what the next read meets
			rst(c)
		}, false, "connection reset by peer"},
		{"v1 line longer than the limit", func(c *net.TCPConn) { io.WriteString(c, "PROXY TCP4 "+strings.Repeat("1", 120)+"\r\n") }, false, "bad PROXY header"},
		{"framed but malformed", func(c *net.TCPConn) { io.WriteString(c, "PROXY TCP4 not-an-address 192.0.2.1 40000 25\r\n") }, false, "bad PROXY header"},
		{"UDP", func(c *net.TCPConn) { c.Write(udp) }, false, "not TCP"},
		{"in pieces with pauses", func(c *net.TCPConn) {
			for _, p := range [][]byte{good[:6], good[6:20], good[20:]} {
				c.Write(p)
				time.Sleep(30 * time.Millisecond)
			}
		}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var log lockedBuffer
			// A header timeout well within the waits below, and logged
			// as one: a refusal that fell to it would not be logged as
			// what the front did.
			tb := newTestbed(t, Options{Engine: eng, ProxyProtocol: 1, HeaderTimeout: 2 * time.Second, TrustedFronts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Logger: captureLogger(&log)})
			c := dial(t, tb.s, netip.MustParseAddr("127.0.0.1"), mx1)
			tc.send(c.c)
			if tc.ok {
				if name, seen, _ := parseBanner(c.line()); name != "a" || seen != "127.1.0.9" {
					t.Errorf("reached %q seeing %q, want a seeing 127.1.0.9", name, seen)
				}
				return
			}
			waitFor(t, 5*time.Second, "the front to be refused", func() bool { return tb.s.Stats().Rejected["proxy_header"] == 1 })
			waitFor(t, 5*time.Second, "the session to end", func() bool { return tb.s.Stats().Active == 0 })
			if l := c.line(); l != "" {
				t.Errorf("a refused front got %q", l)
			}
			if l := log.String(); !strings.Contains(l, "bad PROXY header") && !strings.Contains(l, "PROXY header from trusted front") || !strings.Contains(l, tc.log) {
				t.Errorf("the refusal is not logged as %q:\n%s", tc.log, l)
			}
			if n := tb.a.Sessions.Load() + tb.b.Sessions.Load() + tb.strict.Sessions.Load(); n != 0 {
				t.Errorf("a refused front reached a server (%d sessions)", n)
			}
		})
	}
}

// TestProxyHeaderWildcardListener: on a wildcard listener (0.0.0.0), the
// PROXY header passed on names the address the client connected to,
// asked of the accepted socket, not the unspecified one listened on.
func TestProxyHeaderWildcardListener(t *testing.T) { forEngines(t, testProxyHeaderWildcardListener) }

func testProxyHeaderWildcardListener(t *testing.T, eng Engine) {
	got := make(chan string, 1)
	s := rawTarget(t, eng, Options{ProxyProtocol: 2, Listen: map[netip.AddrPort]netip.AddrPort{mx1: netip.MustParseAddrPort("0.0.0.0:0")}}, func(c *net.TCPConn) {
		h, err := proxyproto.Read(bufio.NewReader(c))
		if err != nil {
			got <- err.Error()
			return
		}
		got <- h.SourceAddr.String() + " > " + h.DestinationAddr.String()
	})
	to, _ := s.ListenAddr(mx1)
	if !to.Addr().IsUnspecified() {
		t.Fatalf("listening on %v, want a wildcard", to)
	}
	c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 3, 0, 7)}, net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), to.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := fmt.Sprintf("%v > 127.0.0.2:%d", c.LocalAddr(), to.Port())
	select {
	case h := <-got:
		if h != want {
			t.Errorf("PROXY header %s, want %s", h, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PROXY header at the target")
	}
}

// TestDialFailsAtOnce: a target whose connect fails in the call itself
// (a multicast address: no TCP route, ENETUNREACH), not later on the
// socket, fails over to the next target like any dial failure: counted
// against the target, logged with the kernel's reason, the client served
// by the next one.
func TestDialFailsAtOnce(t *testing.T) { forEngines(t, testDialFailsAtOnce) }

func testDialFailsAtOnce(t *testing.T, eng Engine) {
	var log lockedBuffer
	a, b, strict := newSinks(t, false)
	a.Close()
	bad := netip.MustParseAddrPort("224.0.0.1:25")
	p := seedPlan(bad, b.Addr, strict.Addr, netip.AddrPort{}, netip.AddrPort{})
	s := start(t, p, Options{Engine: eng, Logger: captureLogger(&log)})
	c := dial(t, s, netip.MustParseAddr("127.1.2.3"), mx1)
	if name, _, _ := parseBanner(c.line()); name != "b" {
		t.Fatalf("127.1.2.3 on mx1 reached %q, want b after its target failed", name)
	}
	for _, tg := range s.Stats().Targets {
		if tg.Addr == bad && tg.DialFailures != 1 {
			t.Errorf("%v: %d dial failures, want 1", bad, tg.DialFailures)
		}
	}
	if l := log.String(); !strings.Contains(l, "network is unreachable") {
		t.Errorf("the dial failure is not logged with its reason:\n%s", l)
	}
}
