package splitter

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend/splitter/splittertest"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// Entry points of the test plans (documentation addresses), each listened
// on at a free loopback port.
var (
	mx1 = netip.MustParseAddrPort("192.0.2.1:25")
	mx2 = netip.MustParseAddrPort("192.0.2.2:25")
	mx6 = netip.MustParseAddrPort("[2001:db8::1]:25")
)

// testbed is three sinks and a splitter in front of them.
type testbed struct {
	a, b, strict *splittertest.Sink
	plan         *steer.Plan
	s            *Splitter
}

func newSinks(t testing.TB, proxy bool) (a, b, strict *splittertest.Sink) {
	t.Helper()
	mk := func(name, addr string) *splittertest.Sink {
		s, err := splittertest.NewSink(name, addr, proxy)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return mk("a", "127.0.0.1:0"), mk("b", "127.0.0.1:0"), mk("strict", "127.0.0.1:0")
}

// seedPlan is the seed's policy on loopback: sources outside "english"
// go to strict; English ones split at 127.64.0.0 (IPv4) or 8000:: (IPv6),
// rotated on the second MX. english = 127.0.0.0/9 and ::1, so sources in
// 127.0-63 reach a (mx1), 127.64-127 reach b (mx1), 127.128-255 strict.
func seedPlan(a, b, strict netip.AddrPort, a6, strict6 netip.AddrPort) *steer.Plan {
	var bl cidr.Builder
	bl.AddPrefix(netip.MustParsePrefix("127.0.0.0/9"))
	bl.AddPrefix(netip.MustParsePrefix("::1/128"))
	english, _ := bl.Set()
	lo4 := netipx.MustParseIPRange("0.0.0.0-127.63.255.255")
	hi4 := netipx.MustParseIPRange("127.64.0.0-255.255.255.255")
	p := &steer.Plan{Sets: []steer.Set{{Name: "english", Addrs: english}}}
	add := func(r steer.Rule) { p.Rules = append(p.Rules, r) }
	for i, mx := range []netip.AddrPort{mx1, mx2} {
		x, y := a, b
		if i == 1 {
			x, y = b, a
		}
		n := fmt.Sprint(i + 1)
		add(steer.Rule{Name: "foreign-mx" + n, Family: 4, DstAddr: mx.Addr(), DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "strict", To: strict})
		add(steer.Rule{Name: "split-mx" + n + "-0", Family: 4, DstAddr: mx.Addr(), DstPort: 25, Src: lo4, Target: name(x, a), To: x})
		add(steer.Rule{Name: "split-mx" + n + "-1", Family: 4, DstAddr: mx.Addr(), DstPort: 25, Src: hi4, Target: name(y, a), To: y})
	}
	if a6.IsValid() {
		add(steer.Rule{Name: "foreign-mx6", Family: 6, DstAddr: mx6.Addr(), DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "strict6", To: strict6})
		add(steer.Rule{Name: "english-mx6", Family: 6, DstAddr: mx6.Addr(), DstPort: 25, SrcSet: "english", Target: "a6", To: a6})
	}
	return p
}

func name(x, a netip.AddrPort) string {
	if x == a {
		return "a"
	}
	return "b"
}

func quietLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// loopback maps every entry point to a free loopback port of its family.
func loopback(p *steer.Plan) map[netip.AddrPort]netip.AddrPort {
	m := map[netip.AddrPort]netip.AddrPort{}
	for _, ep := range EntryPoints(p) {
		if ep.Addr().Is4() {
			m[ep] = netip.MustParseAddrPort("127.0.0.1:0")
		} else {
			m[ep] = netip.MustParseAddrPort("[::1]:0")
		}
	}
	return m
}

func start(t testing.TB, p *steer.Plan, opts Options) *Splitter {
	t.Helper()
	if opts.Listen == nil {
		opts.Listen = loopback(p)
	}
	if opts.HealthInterval == 0 {
		opts.HealthInterval = -1
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	s, err := New(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTestbed(t *testing.T, opts Options) *testbed {
	t.Helper()
	a, b, strict := newSinks(t, opts.ProxyProtocol > 0)
	p := seedPlan(a.Addr, b.Addr, strict.Addr, netip.AddrPort{}, netip.AddrPort{})
	return &testbed{a: a, b: b, strict: strict, plan: p, s: start(t, p, opts)}
}

// smtpConn is a test client.
type smtpConn struct {
	t *testing.T
	c *net.TCPConn
	r *bufio.Reader
}

// dial connects from src (a loopback address; invalid for any) to the
// splitter's entry point ep.
func dial(t *testing.T, s *Splitter, src netip.Addr, ep netip.AddrPort) *smtpConn {
	t.Helper()
	c, err := dialErr(s, src, ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.c.Close() })
	c.t = t
	return c
}

func dialErr(s *Splitter, src netip.Addr, ep netip.AddrPort) (*smtpConn, error) {
	to, ok := s.ListenAddr(ep)
	if !ok {
		return nil, fmt.Errorf("%v is not an entry point", ep)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	c, err := d.DialContext(context.Background(), "tcp", to.String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &smtpConn{c: c.(*net.TCPConn), r: bufio.NewReader(c)}, nil
}

// line reads one reply line, or "" at EOF.
func (c *smtpConn) line() string {
	l, err := c.r.ReadString('\n')
	if err != nil && err != io.EOF {
		c.t.Logf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *smtpConn) cmd(s string) string {
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.line()
}

// banner parses "220 NAME ESMTP client=ADDR".
func parseBanner(l string) (name, client string, ok bool) {
	var esmtp string
	n, _ := fmt.Sscanf(l, "220 %s %s client=%s", &name, &esmtp, &client)
	return name, client, n == 3
}

// waitFor polls cond every 10ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

func mustRange(s string) netipx.IPRange { return netipx.MustParseIPRange(s) }

// fakeResponse is the smallest http.ResponseWriter.
type fakeResponse struct{ w io.Writer }

func (f fakeResponse) Header() http.Header         { return http.Header{} }
func (f fakeResponse) Write(b []byte) (int, error) { return f.w.Write(b) }
func (f fakeResponse) WriteHeader(int)             {}

// engines are the engines of this system, which every end-to-end test runs
// against.
func engines() []Engine {
	if runtime.GOOS == "linux" {
		return []Engine{EngineGoroutine, EngineEventLoop}
	}
	return []Engine{EngineGoroutine}
}

// forEngines runs f once per engine, as subtests named after it.
func forEngines(t *testing.T, f func(t *testing.T, eng Engine)) {
	for _, e := range engines() {
		t.Run(e.String(), func(t *testing.T) { f(t, e) })
	}
}

// lockedBuffer collects a splitter's log for a test to read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func captureLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// oneSession runs a whole session from src to mx1 (banner, QUIT, close)
// and waits until s counts no connection.
func oneSession(t *testing.T, s *Splitter, src string) {
	t.Helper()
	c := dial(t, s, netip.MustParseAddr(src), mx1)
	c.line()
	quit(t, s, c)
}

// quit ends c's session (QUIT, close) and waits until s counts no
// connection.
func quit(t *testing.T, s *Splitter, c *smtpConn) {
	t.Helper()
	c.cmd("QUIT")
	c.c.Close()
	waitFor(t, 5*time.Second, "the session to end", func() bool { return s.Stats().Active == 0 })
}
