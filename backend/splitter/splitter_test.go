package splitter

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/splitter/splittertest"
	"github.com/geosteer/geosteer/steer"
	proxyproto "github.com/pires/go-proxyproto"
)

// TestDifferential: hundreds of sources across 127.0.0.0/8, on both MX
// entry points, each reach the sink Plan.Route names, and the sink sees
// the source's own address through the PROXY header.
func TestDifferential(t *testing.T) { forEngines(t, testDifferential) }

func testDifferential(t *testing.T, eng Engine) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("proxy-v%d", v), func(t *testing.T) {
			tb := newTestbed(t, Options{Engine: eng, ProxyProtocol: v})
			rng := rand.New(rand.NewPCG(1, uint64(v)))
			var srcs []netip.Addr
			for range 300 {
				srcs = append(srcs, netip.AddrFrom4([4]byte{127, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))}))
			}
			type job struct {
				src netip.Addr
				ep  netip.AddrPort
			}
			jobs := make(chan job)
			var wg sync.WaitGroup
			var mu sync.Mutex
			seen := map[string]int{}
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range jobs {
						want := tb.plan.Route(j.src, j.ep.Addr(), j.ep.Port())
						c, err := dialErr(tb.s, j.src, j.ep)
						if err != nil {
							t.Error(err)
							continue
						}
						l, _ := c.r.ReadString('\n')
						c.c.Close()
						name, client, ok := parseBanner(strings.TrimSpace(l))
						if !ok || name != want.Target() || client != j.src.String() {
							t.Errorf("%v -> %v: banner %q, want target %s and client %v", j.src, j.ep, l, want.Target(), j.src)
						}
						mu.Lock()
						seen[name]++
						mu.Unlock()
					}
				}()
			}
			for _, src := range srcs {
				for _, ep := range []netip.AddrPort{mx1, mx2} {
					jobs <- job{src, ep}
				}
			}
			close(jobs)
			wg.Wait()
			if len(seen) != 3 {
				t.Errorf("sinks reached: %v, want all three", seen)
			}
			st := tb.s.Stats()
			var conns uint64
			for _, r := range st.Rules {
				conns += r.Conns
			}
			if conns != 600 || st.Accepted != 600 {
				t.Errorf("stats: %d accepted, %d routed, want 600", st.Accepted, conns)
			}
		})
	}
}

// TestIPv6 routes ::1 on an IPv6 entry point.
func TestIPv6(t *testing.T) { forEngines(t, testIPv6) }

func testIPv6(t *testing.T, eng Engine) {
	mk := func(name string) *splittertest.Sink {
		s, err := splittertest.NewSink(name, "[::1]:0", true)
		if err != nil {
			testenvSkipNoIPv6(t, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b, strict := newSinks(t, true)
	a6, s6 := mk("a6"), mk("strict6")
	p := seedPlan(a.Addr, b.Addr, strict.Addr, a6.Addr, s6.Addr)
	s := start(t, p, Options{Engine: eng, ProxyProtocol: 2})
	c := dial(t, s, netip.MustParseAddr("::1"), mx6)
	name, client, ok := parseBanner(c.line())
	if !ok || name != "a6" || client != "::1" {
		t.Errorf("::1 reached %q seeing %q, want a6 seeing ::1", name, client)
	}
}

func testenvSkipNoIPv6(t *testing.T, err error) {
	t.Helper()
	t.Skipf("no IPv6 loopback: %v", err)
}

// TestProxyHeaderWire checks the header's bytes against the specification
// (haproxy.org/download/2.9/doc/proxy-protocol.txt), parsed here by hand,
// independently of the library that writes it.
func TestProxyHeaderWire(t *testing.T) { forEngines(t, testProxyHeaderWire) }

func testProxyHeaderWire(t *testing.T, eng Engine) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			to := ln.Addr().(*net.TCPAddr).AddrPort()
			p := &steer.Plan{Rules: []steer.Rule{{Name: "all", Family: 4, DstAddr: mx1.Addr(), DstPort: 25, Target: "raw", To: to}}}
			s := start(t, p, Options{Engine: eng, ProxyProtocol: v})
			src := netip.MustParseAddr("127.9.8.7")
			c := dial(t, s, src, mx1)
			srv, err := ln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			srv.SetDeadline(time.Now().Add(5 * time.Second))
			gotSrc, gotDst, err := specHeader(srv, v)
			if err != nil {
				t.Fatal(err)
			}
			local, _ := s.ListenAddr(mx1)
			if gotSrc != netip.AddrPortFrom(src, uint16(c.c.LocalAddr().(*net.TCPAddr).Port)) || gotDst != local {
				t.Errorf("header says %v -> %v, want %v -> %v", gotSrc, gotDst, c.c.LocalAddr(), local)
			}
			// The client's bytes follow the header unchanged.
			io.WriteString(c.c, "EHLO x\r\n")
			buf := make([]byte, 8)
			if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "EHLO x\r\n" {
				t.Errorf("after the header: %q, %v", buf, err)
			}
		})
	}
}

// specHeader reads a PROXY header for TCP over IPv4 as the specification
// lays it out.
func specHeader(r io.Reader, version int) (src, dst netip.AddrPort, err error) {
	if version == 1 {
		var line []byte
		b := make([]byte, 1)
		for len(line) < 107 && !strings.HasSuffix(string(line), "\r\n") {
			if _, err := io.ReadFull(r, b); err != nil {
				return src, dst, err
			}
			line = append(line, b[0])
		}
		f := strings.Fields(string(line))
		if len(f) != 6 || f[0] != "PROXY" || f[1] != "TCP4" {
			return src, dst, fmt.Errorf("v1 header %q", line)
		}
		src, err1 := netip.ParseAddrPort(f[2] + ":" + f[4])
		dst, err2 := netip.ParseAddrPort(f[3] + ":" + f[5])
		return src, dst, errors.Join(err1, err2)
	}
	h := make([]byte, 16)
	if _, err := io.ReadFull(r, h); err != nil {
		return src, dst, err
	}
	sig := "\r\n\r\n\x00\r\nQUIT\n"
	if string(h[:12]) != sig || h[12] != 0x21 || h[13] != 0x11 {
		return src, dst, fmt.Errorf("v2 header % x", h)
	}
	n := int(h[14])<<8 | int(h[15])
	if n < 12 {
		return src, dst, fmt.Errorf("v2 length %d", n)
	}
	a := make([]byte, n)
	if _, err := io.ReadFull(r, a); err != nil {
		return src, dst, err
	}
	src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), uint16(a[8])<<8|uint16(a[9]))
	dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), uint16(a[10])<<8|uint16(a[11]))
	return src, dst, nil
}

// TestTrustedFront: a trusted front's header decides the route and is
// passed on; an untrusted client's header is just bytes; a trusted front
// without a header is closed.
func TestTrustedFront(t *testing.T) { forEngines(t, testTrustedFront) }

func testTrustedFront(t *testing.T, eng Engine) {
	tb := newTestbed(t, Options{Engine: eng, ProxyProtocol: 2, TrustedFronts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	front := netip.MustParseAddr("127.0.0.1")
	for _, v := range []byte{1, 2} {
		c := dial(t, tb.s, front, mx1)
		client := &net.TCPAddr{IP: net.IPv4(127, 200, 0, 9), Port: 40000}
		proxyproto.HeaderProxyFromAddrs(v, client, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25}).WriteTo(c.c)
		name, seen, _ := parseBanner(c.line())
		if name != "strict" || seen != "127.200.0.9" {
			t.Errorf("v%d: front carrying 127.200.0.9 reached %q seeing %q, want strict seeing 127.200.0.9", v, name, seen)
		}
	}

	// Bytes the front sends with the header (in one segment) reach the
	// server after the header passed on.
	c := dial(t, tb.s, front, mx1)
	h, _ := proxyproto.HeaderProxyFromAddrs(1, &net.TCPAddr{IP: net.IPv4(127, 1, 0, 9), Port: 40000}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25}).Format()
	c.c.Write(append(h, "EHLO early\r\n"...))
	if name, seen, _ := parseBanner(c.line()); name != "a" || seen != "127.1.0.9" {
		t.Errorf("front with early bytes reached %q seeing %q, want a seeing 127.1.0.9", name, seen)
	}
	if r := c.line(); !strings.HasPrefix(r, "250") {
		t.Errorf("reply to the early EHLO: %q, want 250", r)
	}

	// An untrusted client claiming another address is routed on its own.
	c = dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
	io.WriteString(c.c, "PROXY TCP4 127.200.0.9 192.0.2.1 40000 25\r\n")
	name, seen, _ := parseBanner(c.line())
	if name != "a" || seen != "127.1.0.1" {
		t.Errorf("untrusted header: reached %q seeing %q, want a seeing 127.1.0.1", name, seen)
	}
	if r := c.line(); !strings.HasPrefix(r, "500") {
		t.Errorf("server's reply to the untrusted header: %q, want 500", r)
	}

	// A trusted front that sends no header is closed without a word.
	c = dial(t, tb.s, front, mx1)
	io.WriteString(c.c, "EHLO front.example\r\n")
	if l := c.line(); l != "" {
		t.Errorf("trusted front without header got %q, want the connection closed", l)
	}
	if n := tb.s.Stats().Rejected["proxy_header"]; n != 1 {
		t.Errorf("proxy_header rejections = %d, want 1", n)
	}
}

// TestFailover: with a down, a source it serves fails over to b, where
// it would land on the other MX; a foreign source never fails over to a
// lenient server and gets 421 when strict is down.
func TestFailover(t *testing.T) { forEngines(t, testFailover) }

func testFailover(t *testing.T, eng Engine) {
	tb := newTestbed(t, Options{Engine: eng, ProxyProtocol: 1})
	tb.a.Close()
	c := dial(t, tb.s, netip.MustParseAddr("127.1.2.3"), mx1)
	if name, _, _ := parseBanner(c.line()); name != "b" {
		t.Errorf("a down: 127.1.2.3 on mx1 reached %q, want b", name)
	}
	tb.strict.Close()
	c = dial(t, tb.s, netip.MustParseAddr("127.200.2.3"), mx1)
	if l := c.line(); !strings.HasPrefix(l, "421 ") {
		t.Errorf("strict down: foreign source got %q, want 421", l)
	}
	st := tb.s.Stats()
	for _, r := range st.Rules {
		switch r.Rule {
		case "split-mx1-0":
			if r.Failovers != 1 || r.Relayed != 1 {
				t.Errorf("%s: %+v, want 1 failover", r.Rule, r)
			}
		case "foreign-mx1":
			if r.Failures != 1 {
				t.Errorf("%s: %+v, want 1 failure", r.Rule, r)
			}
		}
	}
	if st.Rejected["no_target"] != 1 {
		t.Errorf("no_target = %d, want 1", st.Rejected["no_target"])
	}
}

// TestHealthCheck: a server that stops greeting is taken out (its
// sources go straight to the failover target) and brought back.
func TestHealthCheck(t *testing.T) { forEngines(t, testHealthCheck) }

func testHealthCheck(t *testing.T, eng Engine) {
	// PROXY v1 so that the checks must send a header the sinks accept.
	tb := newTestbed(t, Options{Engine: eng, ProxyProtocol: 1, HealthInterval: 20 * time.Millisecond, HealthTimeout: 100 * time.Millisecond})
	up := func(name string) bool {
		for _, ts := range tb.s.Stats().Targets {
			if ts.Target == name {
				return ts.Up
			}
		}
		t.Fatalf("no target %q", name)
		return false
	}
	tb.a.SetSilent(true)
	waitFor(t, 5*time.Second, "a marked down", func() bool { return !up("a") })
	c := dial(t, tb.s, netip.MustParseAddr("127.1.2.3"), mx1)
	if name, _, _ := parseBanner(c.line()); name != "b" {
		t.Errorf("a down: reached %q, want b", name)
	}
	tb.a.SetSilent(false)
	waitFor(t, 5*time.Second, "a back up", func() bool { return up("a") })
	c = dial(t, tb.s, netip.MustParseAddr("127.1.2.3"), mx1)
	if name, _, _ := parseBanner(c.line()); name != "a" {
		t.Errorf("a up again: reached %q, want a", name)
	}
}

// TestReload swaps two plans 40 times under a steady stream of
// connections: none may be refused or reach a server neither plan names.
func TestReload(t *testing.T) { forEngines(t, testReload) }

func testReload(t *testing.T, eng Engine) {
	tb := newTestbed(t, Options{Engine: eng})
	p1 := tb.plan
	p2 := seedPlan(tb.b.Addr, tb.a.Addr, tb.strict.Addr, netip.AddrPort{}, netip.AddrPort{}) // a and b swapped
	var stop atomic.Bool
	var conns, bad atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := netip.AddrFrom4([4]byte{127, byte(w * 30), 0, 1}) // english, lower: a or b
			for i := 0; i < 5000 && !stop.Load(); i++ {
				c, err := dialErr(tb.s, src, mx1)
				if err != nil {
					t.Errorf("refused: %v", err)
					bad.Add(1)
					return
				}
				l, _ := c.r.ReadString('\n')
				c.c.Close()
				if name, _, _ := parseBanner(strings.TrimSpace(l)); name != "a" && name != "b" {
					t.Errorf("connection %d from %v: %q", i, src, l)
					bad.Add(1)
				}
				conns.Add(1)
			}
		}()
	}
	for i := range 40 {
		p := p1
		if i%2 == 0 {
			p = p2
		}
		if _, err := tb.s.Apply(context.Background(), p, backend.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d connections across 40 reloads", conns.Load())
	if conns.Load() < 40 || bad.Load() > 0 {
		t.Errorf("%d connections, %d bad", conns.Load(), bad.Load())
	}
	if r := tb.s.Stats().Reloads; r != 41 {
		t.Errorf("reloads = %d, want 41", r)
	}
}

// TestApplyEntryPoints: a reload that adds an entry point opens it and
// one that drops it closes it; a dry run changes nothing.
func TestApplyEntryPoints(t *testing.T) { forEngines(t, testApplyEntryPoints) }

func testApplyEntryPoints(t *testing.T, eng Engine) {
	a, b, strict := newSinks(t, false)
	full := seedPlan(a.Addr, b.Addr, strict.Addr, netip.AddrPort{}, netip.AddrPort{})
	one := &steer.Plan{Sets: full.Sets, Rules: full.Rules[:3]} // mx1 only
	s := start(t, one, Options{Engine: eng, Listen: loopback(full)})
	if _, ok := s.ListenAddr(mx2); ok {
		t.Fatal("mx2 listened on before it is in the plan")
	}
	rep, err := s.Apply(context.Background(), full, backend.ApplyOptions{DryRun: true})
	if err != nil || rep.RulesChanged != 3 || !rep.DryRun {
		t.Fatalf("dry run: %+v, %v; want 3 rules changed", rep, err)
	}
	if _, ok := s.ListenAddr(mx2); ok {
		t.Fatal("dry run opened mx2")
	}
	if _, err := s.Apply(context.Background(), full, backend.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s, netip.MustParseAddr("127.1.0.1"), mx2)
	if name, _, _ := parseBanner(c.line()); name != "b" {
		t.Errorf("mx2 after reload: %q, want b", name)
	}
	rep, err = s.Apply(context.Background(), full, backend.ApplyOptions{})
	if err != nil || rep.Changed() {
		t.Errorf("re-applying the same plan: %+v, %v; want no change", rep, err)
	}
	old, _ := s.ListenAddr(mx2)
	if _, err := s.Apply(context.Background(), one, backend.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", old.String(), time.Second); err == nil {
		t.Error("mx2's listener still accepts after it left the plan")
	}
	bad := *one
	bad.Rules = append([]steer.Rule{{Name: "x"}}, one.Rules...)
	if _, err := s.Apply(context.Background(), &bad, backend.ApplyOptions{}); err == nil {
		t.Error("an invalid plan was applied")
	}
}

// TestLimits: over the caps, clients get 421.
func TestLimits(t *testing.T) { forEngines(t, testLimits) }

func testLimits(t *testing.T, eng Engine) {
	t.Run("max-conns", func(t *testing.T) {
		tb := newTestbed(t, Options{Engine: eng, MaxConns: 2})
		src := netip.MustParseAddr("127.1.0.1")
		c1, c2 := dial(t, tb.s, src, mx1), dial(t, tb.s, src, mx1)
		c1.line()
		c2.line()
		c3 := dial(t, tb.s, src, mx1)
		if l := c3.line(); !strings.HasPrefix(l, "421 4.7.0") {
			t.Errorf("third connection: %q, want 421", l)
		}
		c1.cmd("QUIT")
		c1.c.Close()
		waitFor(t, 5*time.Second, "a slot", func() bool { return tb.s.Stats().Active < 2 })
		if _, _, ok := parseBanner(dial(t, tb.s, src, mx1).line()); !ok {
			t.Error("no banner once a slot was free")
		}
	})
	t.Run("per-source", func(t *testing.T) {
		tb := newTestbed(t, Options{Engine: eng, MaxConnsPerSource: 1})
		c1 := dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
		c1.line()
		if l := dial(t, tb.s, netip.MustParseAddr("127.1.0.2"), mx1).line(); !strings.HasPrefix(l, "421 ") {
			t.Errorf("second from the same /24: %q, want 421", l)
		}
		if _, _, ok := parseBanner(dial(t, tb.s, netip.MustParseAddr("127.1.1.2"), mx1).line()); !ok {
			t.Error("another /24 was refused")
		}
		if n := tb.s.Stats().Rejected["max_per_source"]; n != 1 {
			t.Errorf("max_per_source = %d, want 1", n)
		}
	})
	t.Run("no-route", func(t *testing.T) {
		a, _, _ := newSinks(t, false)
		p := &steer.Plan{Rules: []steer.Rule{{Name: "only", Family: 4, DstAddr: mx1.Addr(), DstPort: 25,
			Src: mustRange("127.0.0.0-127.0.0.255"), Target: "a", To: a.Addr}}}
		s := start(t, p, Options{Engine: eng})
		if l := dial(t, s, netip.MustParseAddr("127.5.0.1"), mx1).line(); !strings.HasPrefix(l, "421 4.3.0") {
			t.Errorf("unmatched source: %q, want 421", l)
		}
	})
}

// TestTimeouts: an idle client is cut off after the idle timeout, a
// chatty one after the session timeout.
func TestTimeouts(t *testing.T) { forEngines(t, testTimeouts) }

func testTimeouts(t *testing.T, eng Engine) {
	// Wide margins: a client that sleeps 50 ms between commands must not
	// look idle to a loaded CI machine, whose scheduler can stall a
	// goroutine for a few hundred milliseconds.
	tb := newTestbed(t, Options{Engine: eng, IdleTimeout: 500 * time.Millisecond, SessionTimeout: 1500 * time.Millisecond})
	c := dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
	c.line()
	t0 := time.Now()
	if l := c.line(); l != "" {
		t.Errorf("idle client got %q", l)
	}
	// The splitter's idle clock starts when it relays the banner, before
	// this client has read it (CI saw 496.6 ms here): the lower bound
	// allows for that delay.
	if d := time.Since(t0); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle client closed after %v, want about 500-625ms", d)
	}
	c = dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
	c.line()
	t0 = time.Now()
	for i := 0; i < 100; i++ {
		if r := c.cmd("NOOP"); r == "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(t0); d < 1200*time.Millisecond || d > 4*time.Second {
		t.Errorf("chatty client closed after %v, want about 1500ms", d)
	}
	waitFor(t, 5*time.Second, "one timeout of each kind", func() bool {
		st := tb.s.Stats()
		return st.Timeouts["idle"] == 1 && st.Timeouts["session"] == 1
	})
}

// TestRelay sends a 10 MiB message through and checks it arrived intact,
// and that a half-close reaches the server while its reply still comes
// back.
func TestRelay(t *testing.T) { forEngines(t, testRelay) }

func testRelay(t *testing.T, eng Engine) {
	tb := newTestbed(t, Options{Engine: eng, ProxyProtocol: 2})
	c := dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
	c.c.SetDeadline(time.Now().Add(60 * time.Second)) // 10 MiB under -race on a loaded machine
	c.line()
	c.cmd("EHLO test")
	if r := c.cmd("DATA"); !strings.HasPrefix(r, "354") {
		t.Fatalf("DATA: %q", r)
	}
	msg := make([]byte, 10<<20)
	crand.Read(msg)
	for i := range msg { // printable lines of 100 bytes, no dots to stuff
		msg[i] = 'a' + msg[i]%26
		if i%100 == 98 {
			msg[i] = '\r'
		} else if i%100 == 99 {
			msg[i] = '\n'
		}
	}
	msg[len(msg)-2], msg[len(msg)-1] = '\r', '\n'
	go func() {
		c.c.Write(msg)
		io.WriteString(c.c, ".\r\nQUIT\r\n")
		c.c.CloseWrite()
	}()
	want := fmt.Sprintf("250 2.0.0 %d bytes sha256=%x", len(msg), sha256.Sum256(msg))
	if r := c.line(); r != want {
		t.Errorf("after DATA: %q, want %q", r, want)
	}
	if r := c.line(); !strings.HasPrefix(r, "221") {
		t.Errorf("after QUIT and half-close: %q, want 221", r)
	}
	if r := c.line(); r != "" {
		t.Errorf("after 221: %q, want EOF", r)
	}

	// A server that answers only after the client's EOF.
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d\n", n)
	}()
	p := &steer.Plan{Rules: []steer.Rule{{Name: "eof", Family: 4, DstAddr: mx1.Addr(), DstPort: 25, Target: "eof", To: ln.Addr().(*net.TCPAddr).AddrPort()}}}
	s := start(t, p, Options{Engine: eng})
	c = dial(t, s, netip.Addr{}, mx1)
	io.WriteString(c.c, "hello")
	c.c.CloseWrite()
	if r := c.line(); r != "got 5" {
		t.Errorf("half-close: %q, want %q", r, "got 5")
	}
}

// TestShutdown: shutdown stops accepting, lets a session finish, and at
// its deadline closes what is left.
func TestShutdown(t *testing.T) { forEngines(t, testShutdown) }

func testShutdown(t *testing.T, eng Engine) {
	tb := newTestbed(t, Options{Engine: eng})
	c := dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
	c.line()
	local, _ := tb.s.ListenAddr(mx1)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- tb.s.Shutdown(ctx)
	}()
	waitFor(t, 5*time.Second, "listener closed", func() bool {
		cc, err := net.DialTimeout("tcp", local.String(), time.Second)
		if err == nil {
			cc.Close()
		}
		return err != nil
	})
	if r := c.cmd("EHLO x"); r != "250 a" {
		t.Errorf("session during shutdown: %q", r)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a session open", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.cmd("QUIT")
	c.c.Close() // the client's FIN ends the session: the relay is transparent to half-closes
	if err := <-done; err != nil {
		t.Errorf("Shutdown after the session ended: %v", err)
	}

	tb = newTestbed(t, Options{Engine: eng, Tarpit: map[string]time.Duration{"strict": time.Hour}})
	c = dial(t, tb.s, netip.MustParseAddr("127.1.0.1"), mx1)
	c.line()
	asleep := dial(t, tb.s, netip.MustParseAddr("127.200.0.1"), mx1)
	waitFor(t, 5*time.Second, "two sessions", func() bool { return tb.s.Stats().Active == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := tb.s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline: %v", err)
	}
	if l := c.line(); l != "" {
		t.Errorf("session left open at the deadline: %q", l)
	}
	if l := asleep.line(); l != "" {
		t.Errorf("tarpitted session left open at the deadline: %q", l)
	}
	if a := tb.s.Stats().Active; a != 0 {
		t.Errorf("%d connections still counted", a)
	}
}

// TestTarpit: tarpitted clients wait, without a goroutine each.
func TestTarpit(t *testing.T) { forEngines(t, testTarpit) }

func testTarpit(t *testing.T, eng Engine) {
	const n, delay = 200, 500 * time.Millisecond
	tb := newTestbed(t, Options{Engine: eng, Tarpit: map[string]time.Duration{"strict": delay}})
	before := runtime.NumGoroutine()
	cs := make([]*smtpConn, n)
	t0 := time.Now()
	for i := range cs {
		cs[i] = dial(t, tb.s, netip.AddrFrom4([4]byte{127, 200, byte(i), 1}), mx1)
	}
	waitFor(t, 5*time.Second, "all accepted", func() bool { return tb.s.Stats().Active == n })
	if time.Since(t0) < delay {
		if g := runtime.NumGoroutine() - before; g > n/4 {
			t.Errorf("%d goroutines for %d tarpitted clients", g, n)
		}
	}
	for i, c := range cs {
		if name, _, _ := parseBanner(c.line()); name != "strict" {
			t.Errorf("client %d: %q", i, name)
		}
	}
	if d := time.Since(t0); d < delay {
		t.Errorf("banners after %v, want at least %v", d, delay)
	}
}

// TestDecideAllocs: the per-connection decision allocates nothing.
func TestDecideAllocs(t *testing.T) {
	tb := newTestbed(t, Options{})
	src := netip.MustParseAddr("127.1.2.3")
	if a := testing.AllocsPerRun(1000, func() { tb.s.decide(src, mx1) }); a != 0 {
		t.Errorf("decide allocates %v times", a)
	}
}

func BenchmarkDecide(b *testing.B) {
	a, bb, strict := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")
	p := seedPlan(a, bb, strict, netip.AddrPort{}, netip.AddrPort{})
	s := &Splitter{}
	s.cur.Store(&state{plan: p, router: p})
	src := netip.MustParseAddr("127.1.2.3")
	for b.Loop() {
		s.decide(src, mx1)
	}
}

// TestMetrics: counters reach expvar and the Prometheus text.
func TestMetrics(t *testing.T) { forEngines(t, testMetrics) }

func testMetrics(t *testing.T, eng Engine) {
	tb := newTestbed(t, Options{Engine: eng})
	oneSession(t, tb.s, "127.1.0.1")
	var sb strings.Builder
	tb.s.MetricsHandler().ServeHTTP(fakeResponse{&sb}, nil)
	for _, want := range []string{
		"geosteer_splitter_accepted_total 1\n",
		`geosteer_splitter_rule_connections_total{rule="split-mx1-0"} 1` + "\n",
		`geosteer_splitter_rule_connections_total{rule="foreign-mx1"} 0` + "\n",
		`geosteer_splitter_target_connections_total{target="a",addr="` + tb.a.Addr.String() + `"} 1` + "\n",
		"# TYPE geosteer_splitter_target_up gauge\n",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, sb.String())
		}
	}
	if v := tb.s.Var().String(); !strings.Contains(v, `"Accepted":1`) {
		t.Errorf("expvar: %s", v)
	}
	for _, r := range tb.s.Stats().Rules {
		if r.Rule == "split-mx1-0" && (r.BytesIn != uint64(len("QUIT\r\n")) || r.BytesOut == 0) {
			t.Errorf("bytes: %+v", r)
		}
	}
}

// TestRender lists the listeners and rules.
func TestRender(t *testing.T) {
	tb := newTestbed(t, Options{Tarpit: map[string]time.Duration{"strict": 20 * time.Second}})
	var sb strings.Builder
	if err := tb.s.Render(&sb, tb.plan); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"listen 127.0.0.1:0 (entry point 192.0.2.1:25)",
		"foreign-mx1         src not in english -> strict " + tb.strict.Addr.String() + " (tarpit 20s)",
		"split-mx2-1         src 127.64.0.0-255.255.255.255 -> a ",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("render lacks %q:\n%s", want, sb.String())
		}
	}
}
