package splitter

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geosteer/geosteer/steer"
	proxyproto "github.com/pires/go-proxyproto"
)

// rawTarget starts a TCP server on loopback that runs serve on each
// connection, and a splitter relaying every connection on mx1 to it.
func rawTarget(t *testing.T, eng Engine, opts Options, serve func(c *net.TCPConn)) *Splitter {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				serve(c)
			}()
		}
	}()
	p := &steer.Plan{Rules: []steer.Rule{{Name: "raw", Family: 4, DstAddr: mx1.Addr(), DstPort: 25, Target: "raw", To: ln.Addr().(*net.TCPAddr).AddrPort()}}}
	opts.Engine = eng
	return start(t, p, opts)
}

// TestHalfClose: a FIN from either side reaches the other while the
// opposite direction keeps flowing.
func TestHalfClose(t *testing.T) { forEngines(t, testHalfClose) }

func testHalfClose(t *testing.T, eng Engine) {
	got := make(chan string, 1)
	s := rawTarget(t, eng, Options{}, func(c *net.TCPConn) {
		// The server says its piece and half-closes, then reads the
		// client's to the end.
		io.WriteString(c, "bye\n")
		c.CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	c := dial(t, s, netip.Addr{}, mx1)
	if l := c.line(); l != "bye" {
		t.Fatalf("server's line: %q", l)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after the server's half-close: %v, want EOF", err)
	}
	io.WriteString(c.c, "still talking\n")
	time.Sleep(20 * time.Millisecond) // a second segment, after the server's FIN has been seen
	io.WriteString(c.c, "and done\n")
	c.c.CloseWrite()
	select {
	case s := <-got:
		if s != "still talking\nand done\n" {
			t.Errorf("server received %q after its half-close", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client's bytes after the server's half-close never arrived")
	}
	waitFor(t, 5*time.Second, "session end", func() bool { return s.Stats().Active == 0 })
}

// TestBackPressure: both directions at once, 8 MiB each way, with slow
// readers on both ends, arrive intact: the splitter holds what it read
// while the destination is full (partial writes, spliced pipes) and reads
// again when there is room.
func TestBackPressure(t *testing.T) { forEngines(t, testBackPressure) }

func testBackPressure(t *testing.T, eng Engine) {
	const size = 8 << 20
	data := func(seed byte) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7) + seed
		}
		return b
	}
	up, down := data(1), data(2)
	// slowRead reads everything, pausing between small reads.
	slowRead := func(r io.Reader) [32]byte {
		h := sha256.New()
		buf := make([]byte, 4096)
		for i := 0; ; i++ {
			n, err := r.Read(buf)
			h.Write(buf[:n])
			if err != nil {
				break
			}
			if i%64 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		return [32]byte(h.Sum(nil))
	}
	// trickle writes b in pieces of varying size, so that the splitter's
	// reads are short (read and write) and long (splice) in turn.
	trickle := func(w *net.TCPConn, b []byte) {
		for i := 0; len(b) > 0; i++ {
			n := min(len(b), 100+i%7*9000)
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		w.CloseWrite()
	}
	atServer := make(chan [32]byte, 1)
	s := rawTarget(t, eng, Options{}, func(c *net.TCPConn) {
		go trickle(c, down)
		atServer <- slowRead(c)
	})
	c := dial(t, s, netip.Addr{}, mx1)
	c.c.SetDeadline(time.Now().Add(60 * time.Second))
	go trickle(c.c, up)
	if got := slowRead(c.c); got != sha256.Sum256(down) {
		t.Error("server to client: bytes differ")
	}
	select {
	case got := <-atServer:
		if got != sha256.Sum256(up) {
			t.Error("client to server: bytes differ")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("client to server never finished")
	}
	waitFor(t, 5*time.Second, "session end", func() bool { return s.Stats().Active == 0 })
	for _, r := range s.Stats().Rules {
		if r.BytesIn != size || r.BytesOut != size {
			t.Errorf("counted %d bytes in, %d out; want %d each", r.BytesIn, r.BytesOut, size)
		}
	}
}

// TestManySessions: hundreds of sessions open at once all get their
// banner and end, in bounded time; the event loop serves them without a
// goroutine each.
func TestManySessions(t *testing.T) { forEngines(t, testManySessions) }

func testManySessions(t *testing.T, eng Engine) {
	const n = 400
	tb := newTestbed(t, Options{Engine: eng})
	before := runtime.NumGoroutine()
	t0 := time.Now()
	cs := make([]*smtpConn, n)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialErr(tb.s, netip.AddrFrom4([4]byte{127, byte(1 + i%63), byte(i / 63), 1}), mx1)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { c.c.Close() })
			c.t = t
			cs[i] = c
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, c := range cs {
		if name, _, _ := parseBanner(c.line()); name != "a" {
			t.Fatalf("session %d: banner from %q", i, name)
		}
	}
	if a := tb.s.Stats().Active; a != n {
		t.Errorf("%d active, want %d", a, n)
	}
	// The sinks and the clients' test goroutines are not the splitter's:
	// the sinks run two goroutines per session at most, so more than that
	// is the splitter's.
	if g := runtime.NumGoroutine() - before; eng == EngineEventLoop && g > 2*n+20 {
		t.Errorf("%d more goroutines with %d sessions open", g, n)
	}
	for _, c := range cs {
		if r := c.cmd("QUIT"); !strings.HasPrefix(r, "221") {
			t.Errorf("QUIT: %q", r)
		}
		c.c.Close()
	}
	waitFor(t, 20*time.Second, "all sessions to end", func() bool { return tb.s.Stats().Active == 0 })
	t.Logf("%d sessions in %v", n, time.Since(t0))
}

// TestHeaderInPieces: a trusted front's header that arrives a few bytes at
// a time. The specification lets a receiver be tolerant of a split header
// or drop the connection; both engines are tolerant of both versions (they
// frame the header as it comes, then go-proxyproto parses it), and drop a
// header that stops half-way at the header timeout, logged as one.
func TestHeaderInPieces(t *testing.T) { forEngines(t, testHeaderInPieces) }

func testHeaderInPieces(t *testing.T, eng Engine) {
	var log lockedBuffer
	tb := newTestbed(t, Options{Engine: eng, ProxyProtocol: 1, HeaderTimeout: 300 * time.Millisecond,
		TrustedFronts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Logger: captureLogger(&log)})
	front := netip.MustParseAddr("127.0.0.1")
	for _, v := range []byte{1, 2} {
		h, _ := proxyproto.HeaderProxyFromAddrs(v, &net.TCPAddr{IP: net.IPv4(127, 1, 0, 9), Port: 40000}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25}).Format()
		c := dial(t, tb.s, front, mx1)
		for i := 0; i < len(h); i += 5 {
			c.c.Write(h[i:min(i+5, len(h))])
			time.Sleep(2 * time.Millisecond)
		}
		name, seen, _ := parseBanner(c.line())
		if name != "a" || seen != "127.1.0.9" {
			t.Errorf("v%d in pieces: reached %q seeing %q, want a seeing 127.1.0.9", v, name, seen)
		}
	}
	c := dial(t, tb.s, front, mx1)
	c.c.Write([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x01"))
	t0 := time.Now()
	if l := c.line(); l != "" {
		t.Errorf("half a header got %q", l)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("half a header closed after %v, want the 300ms header timeout", d)
	}
	if n := tb.s.Stats().Rejected["proxy_header"]; n != 1 {
		t.Errorf("proxy_header rejections = %d, want 1", n)
	}
	// Logged as what it is: not a dial's (or a read's) "i/o timeout".
	if l := log.String(); !strings.Contains(l, "PROXY header timeout") || strings.Contains(l, "i/o timeout") {
		t.Errorf("the header timeout is not logged as one:\n%s", l)
	}
}

// TestIdleReset: bytes in either direction keep a session alive past the
// idle timeout; silence ends it.
func TestIdleReset(t *testing.T) { forEngines(t, testIdleReset) }

func testIdleReset(t *testing.T, eng Engine) {
	const idle = 300 * time.Millisecond
	tb := newTestbed(t, Options{Engine: eng, IdleTimeout: idle})
	c := dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
	c.line()
	t0 := time.Now()
	var last time.Time
	for time.Since(t0) < 3*idle {
		if r := c.cmd("NOOP"); !strings.HasPrefix(r, "250") {
			t.Fatalf("NOOP after %v: %q; the session should be alive", time.Since(t0), r)
		}
		last = time.Now()
		time.Sleep(idle / 3)
	}
	if l := c.line(); l != "" {
		t.Errorf("silent session got %q", l)
	}
	// The goroutine engine checks in windows of a quarter of the timeout.
	if d := time.Since(last); d < idle-50*time.Millisecond || d > idle+time.Second {
		t.Errorf("silent session closed after %v, want about %v", d, idle)
	}
}

// TestProxyHeaderLen: the event loop's framing of a PROXY header.
func TestProxyHeaderLen(t *testing.T) {
	v2 := func(body string) string {
		return "\r\n\r\n\x00\r\nQUIT\n\x21\x11" + string([]byte{0, byte(len(body))}) + body
	}
	for _, tc := range []struct {
		in   string
		want int
		bad  bool
	}{
		{"", 0, false},
		{"PRO", 0, false},
		{"PROXY TCP4 1.2.3.4", 0, false},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nEHLO", 32, false},
		{"PROXY " + strings.Repeat("x", 120), 0, true},
		{"\r\n\r\n\x00", 0, false},
		{v2("0123456789ab")[:20], 0, false},
		{v2("0123456789ab") + "EHLO", 28, false},
		{v2(strings.Repeat("x", 22)), 38, false}, // 16|22 would be 22
		{v2(strings.Repeat("x", 22))[:37], 0, false},
		{"EHLO x\r\n", 0, true},
		{"\r\n\r\nX", 0, true},
	} {
		n, err := proxyHeaderLen([]byte(tc.in))
		if n != tc.want || (err != nil) != tc.bad {
			t.Errorf("proxyHeaderLen(%q) = %d, %v; want %d, error %v", tc.in, n, err, tc.want, tc.bad)
		}
	}
}

// FuzzProxyHeaderLen: the event loop's framing agrees with the goroutine
// engine's reader: whatever go-proxyproto reads from a stream, the framer
// finds the same header length, says "more" for every proper prefix of
// it, and the parse of the framed bytes is the same header.
func FuzzProxyHeaderLen(f *testing.F) {
	addProxySeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := proxyHeaderLen(in)
		if n < 0 || n > len(in) || (err != nil && n != 0) {
			t.Fatalf("proxyHeaderLen = %d, %v for %d bytes", n, err, len(in))
		}
		r := bytes.NewReader(in)
		h, rest, rerr := readProxyHeader(r)
		if rerr != nil {
			if n > 0 {
				// The framer may accept what the parser refuses; then
				// parsing the frame must fail too.
				if _, perr := parseProxyHeader(in[:n]); perr == nil {
					t.Fatalf("framed %d bytes parse, but the stream reader refuses: %v", n, rerr)
				}
			}
			return
		}
		consumed := len(in) - r.Len() - len(rest)
		if err != nil || n != consumed {
			t.Fatalf("framer says %d, %v; the stream reader took %d", n, err, consumed)
		}
		for k := range n {
			if m, err := proxyHeaderLen(in[:k]); m != 0 || err != nil {
				t.Fatalf("prefix of %d bytes of a %d-byte header: %d, %v; want more", k, n, m, err)
			}
		}
		h2, err := parseProxyHeader(in[:n])
		if err != nil || !h.EqualsTo(h2) {
			t.Fatalf("framed parse: %v, %v; stream: %v", h2, err, h)
		}
	})
}
