package splitter

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// hangingTarget returns the address of a listener whose accept queue is
// full, so that a connect to it gets no answer (the kernel drops the SYN)
// until the caller's timeout.
func hangingTarget(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4(sa.(*syscall.SockaddrInet4).Addr), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue (backlog 0 holds one connection), then check that
	// the next connect hangs.
	c, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c2, err := net.DialTimeout("tcp", addr.String(), 100*time.Millisecond); err == nil {
		c2.Close()
		t.Skip("the kernel accepted past a full queue; cannot make a hanging target")
	}
	return addr
}

// TestDialTimeout: a target that does not answer the SYN is given up at
// the dial timeout and the connection fails over to the next one.
func TestDialTimeout(t *testing.T) { forEngines(t, testDialTimeout) }

func testDialTimeout(t *testing.T, eng Engine) {
	hang := hangingTarget(t)
	a, b, strict := newSinks(t, false)
	a.Close()
	p := seedPlan(hang, b.Addr, strict.Addr, netip.AddrPort{}, netip.AddrPort{})
	s := start(t, p, Options{Engine: eng, DialTimeout: 300 * time.Millisecond})
	c := dial(t, s, netip.MustParseAddr("127.1.2.3"), mx1)
	t0 := time.Now()
	if name, _, _ := parseBanner(c.line()); name != "b" {
		t.Errorf("hanging a: reached %q, want b", name)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("failed over after %v, want the 300ms dial timeout", d)
	}
	for _, ts := range s.Stats().Targets {
		if ts.Addr == hang && ts.DialFailures != 1 {
			t.Errorf("hanging target: %d dial failures, want 1", ts.DialFailures)
		}
	}
}
