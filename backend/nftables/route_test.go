package nftables

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/geosteer/geosteer/steer"
)

// A lab is a client, a router applying the ruleset, and three servers,
// each in its own namespace:
//
//	client c0 ── r0 router rs0 ── eth0 server a   (198.19.253.2,  fd00:fffe:0::2)
//	  sources      MX on lo  rs1 ── eth0 server b   (198.19.253.6,  fd00:fffe:1::2)
//	                         rs2 ── eth0 foreign    (198.19.253.10, fd00:fffe:2::2)
//
// Servers answer on :25 and :2525, the router itself on :25 and :26, each
// with one line: its name and the source address it saw.
type lab struct {
	client, router *netNS
	servers        []*netNS
	be             *Backend
	sources        []netip.Addr
}

var names = []string{"a", "b", "foreign"}

// ourSpace is every address the lab uses; padding of the sets stays out.
func ourSpace(t testing.TB) cidr.Set {
	var b cidr.Builder
	for _, p := range []string{"10.0.0.0/8", "198.18.0.0/15", "192.0.2.0/24", "203.0.113.0/24", "2001:db8::/32", "fd00::/8"} {
		b.AddPrefix(netip.MustParsePrefix(p))
	}
	s, _ := b.Set()
	return s
}

func newLab(t *testing.T, sources []netip.Addr) *lab {
	testenv.NeedRoot(t)
	l := &lab{client: newNS(t, "c"), router: newNS(t, "r"), sources: sources}
	c, r := l.client, l.router
	run(t, "ip", "-n", c.name, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", r.name)
	c.ip(t, "addr", "add", "198.19.254.2/24", "dev", "c0")
	c.ip(t, "addr", "add", "fd00:fffd::2/64", "dev", "c0", "nodad")
	c.ip(t, "link", "set", "c0", "up")
	r.ip(t, "addr", "add", "198.19.254.1/24", "dev", "r0")
	r.ip(t, "addr", "add", "fd00:fffd::1/64", "dev", "r0", "nodad")
	r.ip(t, "link", "set", "r0", "up")
	c.ip(t, "route", "add", "default", "via", "198.19.254.1")
	c.ip(t, "-6", "route", "add", "default", "via", "fd00:fffd::1")
	for _, mx := range []netip.Addr{mx1v4, mx2v4, mx3v4, mx1v6, mx2v6} {
		r.ip(t, "addr", "add", netip.PrefixFrom(mx, mx.BitLen()).String(), "dev", "lo", "nodad")
	}
	for _, p := range []string{"10.0.0.0/8", "198.18.0.0/16", "198.19.0.0/17", "192.0.2.0/24"} {
		r.ip(t, "route", "add", p, "via", "198.19.254.2")
	}
	for _, p := range []string{"2001:db8::/32", "fd00::/18"} {
		r.ip(t, "route", "add", p, "via", "fd00:fffd::2")
	}
	r.exec(t, "", "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	for i := range names {
		s := newNS(t, fmt.Sprintf("s%d", i))
		l.servers = append(l.servers, s)
		rs := fmt.Sprintf("rs%d", i)
		run(t, "ip", "-n", r.name, "link", "add", rs, "type", "veth", "peer", "name", "eth0", "netns", s.name)
		r.ip(t, "addr", "add", fmt.Sprintf("198.19.253.%d/30", 4*i+1), "dev", rs)
		r.ip(t, "addr", "add", fmt.Sprintf("fd00:fffe:%d::1/64", i), "dev", rs, "nodad")
		r.ip(t, "link", "set", rs, "up")
		s.ip(t, "addr", "add", srvV4[i].String()+"/30", "dev", "eth0")
		s.ip(t, "addr", "add", srvV6[i].String()+"/64", "dev", "eth0", "nodad")
		s.ip(t, "link", "set", "eth0", "up")
		s.ip(t, "route", "add", "default", "via", fmt.Sprintf("198.19.253.%d", 4*i+1))
		s.ip(t, "-6", "route", "add", "default", "via", fmt.Sprintf("fd00:fffe:%d::1", i))
		serve(t, s, names[i], 25, 2525)
	}
	serve(t, r, "router", 25, 26)

	var batch strings.Builder
	for _, a := range sources {
		fmt.Fprintf(&batch, "addr add %s dev c0 nodad\n", netip.PrefixFrom(a, a.BitLen()))
	}
	cmd := exec.Command("ip", "-n", c.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("adding %d source addresses: %v: %s", len(sources), err, out)
	}
	l.be = &Backend{NetNS: r.fd, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	return l
}

// serve answers each connection to the ports with "name source\n".
func serve(t *testing.T, ns *netNS, name string, ports ...int) {
	for _, port := range ports {
		var ln net.Listener
		err := ns.do(func() (err error) {
			ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
				fmt.Fprintf(c, "%s %s\n", name, src)
				c.Close()
			}
		}()
	}
}

// dial connects from src to dst:port inside the client and returns the
// answering server's name and the source it saw.
func (l *lab) dial(src, dst netip.Addr, port uint16) (name string, seen netip.Addr, err error) {
	err = l.client.do(func() error {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
		c, err := d.Dial("tcp", netip.AddrPortFrom(dst, port).String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading answer: %w", err)
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("answer %q", line)
		}
		name = f[0]
		seen, err = netip.ParseAddr(f[1])
		return err
	})
	return name, seen, err
}

// A probe is one connection of the differential test.
type probe struct {
	src, dst netip.Addr
	port     uint16
}

func (l *lab) probes() []probe {
	var ps []probe
	for _, s := range l.sources {
		if s.Is4() {
			for _, mx := range []netip.Addr{mx1v4, mx2v4, mx3v4} {
				ps = append(ps, probe{s, mx, 25})
			}
			ps = append(ps, probe{s, mx1v4, 26}) // no rule: the router answers
		} else {
			for _, mx := range []netip.Addr{mx1v6, mx2v6} {
				ps = append(ps, probe{s, mx, 25})
			}
		}
	}
	return ps
}

// want is where Plan.Route says a probe lands.
func want(p *steer.Plan, pr probe) string {
	d := p.Route(pr.src, pr.dst, pr.port)
	if !d.Matched() {
		return "router"
	}
	return d.Target()
}

// check makes every probe, 16 at a time, and reports those that land
// elsewhere than ok allows.
func (l *lab) check(ps []probe, ok func(probe, string) bool) (bad []string) {
	var mu sync.Mutex
	work := make(chan probe)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pr := range work {
				name, seen, err := l.dial(pr.src, pr.dst, pr.port)
				var msg string
				switch {
				case err != nil:
					msg = fmt.Sprintf("%v → %v:%d: %v", pr.src, pr.dst, pr.port, err)
				case seen != pr.src:
					msg = fmt.Sprintf("%v → %v:%d: server saw source %v", pr.src, pr.dst, pr.port, seen)
				case !ok(pr, name):
					msg = fmt.Sprintf("%v → %v:%d: landed on %s", pr.src, pr.dst, pr.port, name)
				}
				if msg != "" {
					mu.Lock()
					bad = append(bad, msg)
					mu.Unlock()
				}
			}
		}()
	}
	for _, pr := range ps {
		work <- pr
	}
	close(work)
	wg.Wait()
	return bad
}

// labSources are source addresses inside and outside the test's english
// set and its modification, at range edges and at random, in both halves
// of both families.
func labSources(t testing.TB) []netip.Addr {
	rnd := rand.New(rand.NewPCG(42, 42))
	var out []netip.Addr
	add := func(ss ...string) {
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
	}
	add("10.1.0.0", "10.1.255.255", "10.1.128.0", "10.1.127.255", "10.2.0.0", "10.0.255.255", // /16 edges
		"10.3.0.0", "10.3.7.255", "10.3.8.0", "10.3.8.255", "10.3.9.0", // extended range
		"10.5.0.0", "10.5.2.99", "10.5.2.100", "10.4.255.255", // non-prefix range
		"10.9.9.9", "10.9.9.8", "10.9.9.10", // single address
		"10.1.200.255", "10.1.201.0", "10.0.0.1", // mx3's odd range
		"198.18.0.1", "198.18.255.255", "198.19.0.0", "198.19.0.255", "198.19.1.0",
		"192.0.2.127", "192.0.2.128", "192.0.2.255",
		"2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", "2001:db8:2::1", "2001:db8:3::", "2001:db8:3::7ff", "2001:db8:3::800",
		"fd00:1::", "fd00:1:7fff:ffff:ffff:ffff:ffff:ffff", "fd00:1:8000::", "fd00:1:ffff:ffff:ffff:ffff:ffff:ffff", "fd00:2::4", "fd00:2::5", "fd00:2::1:4", "fd00:2::1:5",
		"fd00:0:ffff::", "fd00:0:ffff::ff", "fd00:0:ffff::100", "fd00:3::1")
	for range 60 {
		out = append(out, netip.AddrFrom4([4]byte{10, byte(rnd.IntN(12)), byte(rnd.IntN(256)), byte(1 + rnd.IntN(254))}))
	}
	for range 30 {
		out = append(out, netip.AddrFrom4([4]byte{198, 18 + byte(rnd.IntN(2)), byte(rnd.IntN(128)), byte(1 + rnd.IntN(254))}))
	}
	for range 20 {
		out = append(out, netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rnd.IntN(254))}))
	}
	for range 60 {
		var a [16]byte
		if rnd.IntN(2) == 0 {
			a = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rnd.IntN(4))}
		} else {
			a = [16]byte{0xfd, 0x00, 0, byte(rnd.IntN(4)), byte(rnd.IntN(256))}
		}
		a[15] = byte(1 + rnd.IntN(254))
		out = append(out, netip.AddrFrom16(a))
	}
	// No duplicates: each is an address of the client.
	seen := map[netip.Addr]bool{}
	uniq := out[:0]
	for _, a := range out {
		if !seen[a] {
			seen[a] = true
			uniq = append(uniq, a)
		}
	}
	return uniq
}

// padded is english plus tens of thousands of ranges outside the lab's
// address space, so that the kernel's sets have the size of real ones
// while the lab's sources keep their meaning.
func padded(t testing.TB, english cidr.Set) cidr.Set {
	pad := randomSet(t, 99, 30000, false).Union(randomSet(t, 98, 20000, true)).Difference(ourSpace(t))
	return english.Union(pad)
}

// TestRoutesDifferential: real TCP connections from hundreds of sources
// through the router land on exactly the server Plan.Route names.
func TestRoutesDifferential(t *testing.T) {
	l := newLab(t, labSources(t))
	p := testPlan(t, padded(t, englishTest(t)))
	rep, err := l.be.Apply(ctxT(t), p, backend.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied: %v", rep.Changes)
	ps := l.probes()
	counts := map[string]int{}
	for _, pr := range ps {
		counts[want(p, pr)]++
	}
	bad := l.check(ps, func(pr probe, name string) bool { return name == want(p, pr) })
	for _, b := range bad[:min(len(bad), 20)] {
		t.Error(b)
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d connections misrouted or failed", len(bad), len(ps))
	}
	t.Logf("%d connections from %d sources, all as Plan.Route says: %v", len(ps), len(l.sources), counts)
	for _, n := range append(names, "router") {
		if counts[n] == 0 {
			t.Errorf("no probe expected on %s: the test does not cover it", n)
		}
	}
}

// TestRoutesWhileReapplying applies two plans in turn, incrementally, while
// connections are being made: none may fail, and each must land where one
// of the two plans says (where they agree, exactly there).
func TestRoutesWhileReapplying(t *testing.T) {
	l := newLab(t, labSources(t))
	e1 := padded(t, englishTest(t))
	e2 := modify(t, e1)
	// The database update also touches the padding: about 1% of it.
	e2 = e2.Difference(randomSet(t, 97, 300, false).Difference(ourSpace(t))).Union(randomSet(t, 96, 300, false).Difference(ourSpace(t)))
	p1, p2 := testPlan(t, e1), testPlan(t, e2)
	ctx := ctxT(t)
	if _, err := l.be.Apply(ctx, p1, backend.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ps := l.probes()
	changing := 0
	for _, pr := range ps {
		if want(p1, pr) != want(p2, pr) {
			changing++
		}
	}
	if changing == 0 {
		t.Fatal("the two plans route every probe alike: the test would prove nothing")
	}

	loadCtx, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	var mu sync.Mutex
	var bad []string
	made := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := 0; round < 8 && loadCtx.Err() == nil; round++ {
			b := l.check(ps, func(pr probe, name string) bool { return name == want(p1, pr) || name == want(p2, pr) })
			mu.Lock()
			bad = append(bad, b...)
			made += len(ps)
			mu.Unlock()
		}
	}()
	// Apply in turn for as long as connections are being made.
	applies := 0
	for i := 0; i < 200; i++ {
		select {
		case <-done:
			i = 200
			continue
		default:
		}
		p := p2
		if i%2 == 1 {
			p = p1
		}
		t0 := time.Now()
		rep, err := l.be.Apply(ctx, p, backend.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("apply %d: %v in %v", i, rep.Changes, time.Since(t0))
		if len(rep.Changes) == 0 || strings.HasPrefix(rep.Changes[0], "table") {
			t.Fatalf("apply %d was not incremental: %v", i, rep.Changes)
		}
		applies++
	}
	stop()
	<-done
	for _, b := range bad[:min(len(bad), 20)] {
		t.Error(b)
	}
	if len(bad) > 0 || made == 0 {
		t.Fatalf("%d of %d connections misrouted or failed during %d applies", len(bad), made, applies)
	}
	t.Logf("%d connections during %d incremental applies (%d probes change target between the plans): none failed or misrouted", made, applies, changing)

	// Settled on p2: exact.
	if _, err := l.be.Apply(ctx, p2, backend.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if bad := l.check(ps, func(pr probe, name string) bool { return name == want(p2, pr) }); len(bad) > 0 {
		t.Fatalf("after the last apply: %d misrouted, first: %s", len(bad), bad[0])
	}
}
