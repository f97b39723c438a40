//go:build linux

package splitter

// Adversarial review of the event-loop engine (s3-rev): scenarios run
// through both engines where that is meaningful; tests named TestReview*
// that fail show a bug of the event loop, described at the test.

import (
	"net"
	"net/netip"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// pauseLoops holds every event loop of s (none for the goroutine engine)
// in a command until the returned function is called, so that a test can
// make bytes, FINs or timers pile up before the loop looks at them.
func pauseLoops(t *testing.T, s *Splitter) (resume func()) {
	t.Helper()
	if s.el == nil {
		return func() {}
	}
	release := make(chan struct{})
	for _, lp := range s.el.loops {
		in := make(chan struct{})
		if !lp.do(func() { close(in); <-release }) {
			t.Fatal("loop exited")
		}
		select {
		case <-in:
		case <-time.After(5 * time.Second):
			t.Fatal("loop did not run a command")
		}
	}
	done := false
	resume = func() {
		if !done {
			done = true
			close(release)
		}
	}
	t.Cleanup(resume)
	return resume
}

// countingTarget starts a target that reads everything it is sent until
// EOF or 3s of silence and reports the count, and a splitter in front of
// it (see rawTarget).
func countingTarget(t *testing.T, eng Engine, opts Options) (*Splitter, chan int) {
	got := make(chan int, 4)
	s := rawTarget(t, eng, opts, func(c *net.TCPConn) {
		n := 0
		buf := make([]byte, 64<<10)
		for {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			m, err := c.Read(buf)
			n += m
			if err != nil {
				break
			}
		}
		got <- n
	})
	return s, got
}

// TestReviewHeaderThenBurst: BUG (event loop). A trusted front's header
// arrives in two pieces, the second together with more than ~64 KiB of
// early client bytes already queued when the loop reads. readHeader
// (loopsession_linux.go) limits its read to 16+65535-len(hdr) bytes, less
// than the 64 KiB buffer once hdr holds bytes, and then treats any read
// shorter than the buffer as "drained" (c.readable = false). The read that
// filled the limit was not drained: the rest stays in the client socket,
// and with edge-triggered epoll no new edge comes for bytes already
// there, so the relay never reads them (the target receives 65,524 of the
// 66,000 bytes and the session hangs until the idle timeout). The
// goroutine engine relays all of them.
//
// Fix: clear readable only when n is less than what was asked
// (the slice passed to sysRead), not less than len(lp.buf).
func TestReviewHeaderThenBurst(t *testing.T) { forEngines(t, testReviewHeaderThenBurst) }

func testReviewHeaderThenBurst(t *testing.T, eng Engine) {
	const early = 66000
	s, got := countingTarget(t, eng, Options{TrustedFronts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	h, err := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(127, 1, 0, 9), Port: 40000},
		&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25}).Format()
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s, netip.MustParseAddr("127.0.0.1"), mx1)
	c.c.Write(h[:20])
	time.Sleep(50 * time.Millisecond) // the loop reads the first piece
	resume := pauseLoops(t, s)
	c.c.Write(append(h[20:], make([]byte, early)...))
	time.Sleep(50 * time.Millisecond) // all of it queued at the splitter
	resume()
	select {
	case n := <-got:
		if n != early {
			t.Errorf("target received %d of the %d early bytes", n, early)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("target never finished")
	}
}
