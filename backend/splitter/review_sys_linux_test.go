//go:build linux

package splitter

// Found in review of the event-loop engine's raw system calls (session 3): regression tests.

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// atDepth runs f with about n small frames on the stack, so that the
// frames f calls land on either side of a stack-growth boundary as n
// varies.
//
//go:noinline
func atDepth(n int, f func()) {
	var pad [4]uintptr
	if n > 0 {
		atDepth(n-1, f)
	} else {
		f()
	}
	_ = pad
}

// TestReviewSyscallPointerAcrossStackGrowth: regression (event loop, unsafe
// pointer lifetime). sys6 (sys_linux.go) is an ordinary Go function
// taking pointers already converted to uintptr: accept4, sysSoError,
// sysConnect, sysSetsockoptInt and sysEpollAdd pass
// uintptr(unsafe.Pointer(&local)) for locals on their own stack. The
// unsafe.Pointer rules keep such an object alive and in place only in the
// argument list of a call to an assembly function (or one marked
// //go:uintptrkeepalive); sys6 is neither and is not inlined, so when its
// prologue grows the goroutine's stack, the stack is copied and the
// kernel writes the peer address (or SO_ERROR's value) to, or reads the
// sockaddr, option value or epoll event from, the old stack. accept4 then
// returns the zero AddrPort: the event loop decides that connection on an
// invalid source (a no_route 421, or the wrong rule for a plan that
// matches it), and sysSoError reports a refused connect as connected (see
// TestReviewSoErrorAcrossStackGrowth). The loop goroutine's stack is
// shrunk by GC while it is parked and grows again on the next deep call,
// so in production this hits at random.
//
// Fixed: call unix.RawSyscall6 (assembly) directly in each wrapper, with the
// uintptr(unsafe.Pointer(...)) conversions written in that call's argument
// list; or, as a stopgap, mark sys6 //go:nosplit (verified: both tests
// pass with it).
//
// The test calls accept4 at every stack depth on fresh goroutines, so that
// for some depths the growth happens exactly at sys6's prologue.
func TestReviewSyscallPointerAcrossStackGrowth(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var lfd int
	rc.Control(func(fd uintptr) { lfd = int(fd) })

	bad := 0
	const depths = 1500 // about 48 KiB of frames in 32-byte steps
	deadline := time.Now().Add(20 * time.Second)
	for d := 0; d < depths && time.Now().Before(deadline); d++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		want := c.LocalAddr().(*net.TCPAddr).AddrPort()
		type res struct {
			fd   int
			peer netip.AddrPort
			err  error
		}
		ch := make(chan res, 1)
		go atDepth(d, func() {
			for range 1000 { // the listener is non-blocking (net's)
				fd, peer, err := accept4(lfd)
				if err == unix.EAGAIN {
					time.Sleep(time.Millisecond)
					continue
				}
				ch <- res{fd, peer, err}
				return
			}
			ch <- res{-1, netip.AddrPort{}, unix.EAGAIN}
		})
		r := <-ch
		c.Close()
		if r.err != nil {
			t.Fatalf("depth %d: accept4: %v", d, r.err)
		}
		unix.Close(r.fd)
		if unmap(r.peer) != want {
			bad++
			if bad <= 3 {
				t.Errorf("depth %d: accept4 returned peer %v, want %v (the kernel wrote the address to a stack that had moved)", d, r.peer, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of the accepts lost the peer's address", bad)
	}
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// TestReviewSoErrorAcrossStackGrowth: the same bug seen from connect: a
// refused connect whose SO_ERROR is read by sysSoError at a stack-growth
// boundary reads as success (the kernel wrote the errno to the old
// stack), so connected() would relay to a dead socket instead of failing
// over or answering 421.
func TestReviewSoErrorAcrossStackGrowth(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close() // refused from now on
	bad := 0
	deadline := time.Now().Add(20 * time.Second)
	for d := 0; d < 1500 && time.Now().Before(deadline); d++ {
		fd, err := sysSocket(unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		if err := sysConnect(fd, dead); err != nil && err != unix.EINPROGRESS {
			unix.Close(fd)
			continue // refused at once: nothing pending to read
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		unix.Poll(pfd, 1000)
		ch := make(chan error, 1)
		go atDepth(d, func() { ch <- sysSoError(fd) })
		if err := <-ch; err == nil {
			bad++
			if bad <= 3 {
				t.Errorf("depth %d: sysSoError = nil for a refused connect", d)
			}
		}
		unix.Close(fd)
	}
	if bad > 0 {
		t.Errorf("%d refused connects read as connected", bad)
	}
}
