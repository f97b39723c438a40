//go:build linux

package splitter

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReviewUrgentThenFIN: regression, both engines. A client sends
// "hello ", one byte of TCP urgent data (MSG_OOB), "world\r\n" and its
// FIN, all queued before the splitter reads. Linux stops every read at
// the urgent mark, and splice (tcp_read_sock) cannot pass it at all, so
// before the fix the event loop took its short read for EOF (or, without
// the FIN, for "drained", and stalled) and the goroutine engine's splice
// returned 0, which ReadFrom took for EOF: the server got "hello " and
// lost the rest. Now the event loop reads (never splices) a socket that
// EPOLLPRI has marked until EAGAIN, and the goroutine engine asks
// SIOCATMARK when a splice ends; the server must get every byte.
func TestReviewUrgentThenFIN(t *testing.T) { forEngines(t, testReviewUrgentThenFIN) }

func testReviewUrgentThenFIN(t *testing.T, eng Engine) {
	got := make(chan string, 1)
	accepted := make(chan struct{})
	s := rawTarget(t, eng, Options{}, func(c *net.TCPConn) {
		close(accepted)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	c := dial(t, s, netip.Addr{}, mx1)
	<-accepted
	time.Sleep(20 * time.Millisecond)
	resume := pauseLoops(t, s)
	rc, _ := c.c.SyscallConn()
	io.WriteString(c.c, "hello ")
	rc.Write(func(fd uintptr) bool { unix.Send(int(fd), []byte("!"), unix.MSG_OOB); return true })
	io.WriteString(c.c, "world\r\n")
	c.c.CloseWrite()
	time.Sleep(50 * time.Millisecond)
	resume()
	select {
	case g := <-got:
		if g != "hello world\r\n" {
			t.Errorf("server got %q, want %q (the urgent byte is out of band)", g, "hello world\r\n")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server never finished reading")
	}
}
