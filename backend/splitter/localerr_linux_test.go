package splitter

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geosteer/geosteer/steer"
)

// TestLocalDialError: a splitter out of file descriptors cannot create the
// socket to its target (EMFILE). That is its own problem, not the
// target's: the client gets a 421, the target stays up (health checks are
// on, so a target's dial failure would take it down) and is not counted
// as failing, and the log says why. With no descriptor left at all, the
// accept fails, and the log names accept4. The limit is the process's,
// so the test runs in a child process of its own.
func TestLocalDialError(t *testing.T) { forEngines(t, testLocalDialError) }

const fdChildEnv = "GEOSTEER_SPLITTER_FD_CHILD"

func testLocalDialError(t *testing.T, eng Engine) {
	if os.Getenv(fdChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLocalDialError$/^"+eng.String()+"$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), fdChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestLocalDialError/"+eng.String())) {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	checked := make(chan struct{}, 1)
	var log lockedBuffer
	s := rawTarget(t, eng, Options{HealthInterval: time.Hour, Logger: captureLogger(&log)}, func(c *net.TCPConn) {
		c.Write([]byte("220 raw\r\n"))
		io.Copy(io.Discard, c)
		// Closed before the limit is set: a descriptor freed after it
		// would let the dial through.
		c.Close()
		checked <- struct{}{}
	})
	select { // the first health check has been and gone
	case <-checked:
	case <-time.After(10 * time.Second):
		t.Fatal("no health check")
	}
	to, _ := s.ListenAddr(mx1)
	sa := &syscall.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}
	// The clients' sockets are made before the limit: connect needs no
	// new descriptor.
	var clients [2]int
	for i := range clients {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Sec: 2})
		clients[i] = fd
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	lim := old
	lim.Cur = uint64(len(ents)) + 16
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Fill every free descriptor below the limit, then free one: the
	// accept takes it, and the target's socket finds none.
	var fill []int
	defer func() {
		for _, fd := range fill {
			syscall.Close(fd)
		}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	}()
	fillFDs := func() { // takes every free descriptor below the limit
		for {
			fd, err := syscall.Dup(0)
			if err == syscall.EMFILE {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fill = append(fill, fd)
		}
	}
	fillFDs()
	syscall.Close(fill[len(fill)-1])
	fill = fill[:len(fill)-1]

	if err := syscall.Connect(clients[0], sa); err != nil {
		t.Fatal(err)
	}
	// If something else of the process took the free descriptor first
	// (the accept fails; the race detector's runtime does, at times),
	// free one more: the accept is retried after its backoff.
	var buf [128]byte
	n := 0
	for try := 0; ; try++ {
		m, err := syscall.Read(clients[0], buf[:])
		if err == nil {
			n = m
			break
		}
		if err != syscall.EAGAIN || try == 4 || len(fill) == 0 {
			t.Fatalf("client: %v; open descriptors: %d; log:\n%s", err, countFDs(), log.String())
		}
		syscall.Close(fill[len(fill)-1])
		fill = fill[:len(fill)-1]
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, "421 4.4.1") {
		t.Errorf("client out of descriptors got %q, want 421 4.4.1", got)
	}
	st := s.Stats()
	if len(st.Targets) != 1 || !st.Targets[0].Up || st.Targets[0].DialFailures != 0 {
		t.Errorf("target after a local EMFILE: %+v, want up with no dial failures", st.Targets)
	}
	if l := log.String(); !strings.Contains(l, "out of local resources") || !strings.Contains(l, "too many open files") || strings.Contains(l, "target down") {
		t.Errorf("log does not say the dial was out of local resources, or marked the target down:\n%s", l)
	}

	// Now none left: the accept itself fails. (The refused session's
	// descriptor is closed just after its 421 is sent: wait for it.)
	waitFor(t, 5*time.Second, "the refused session to end", func() bool { return s.Stats().Active == 0 })
	fillFDs()
	if err := syscall.Connect(clients[1], sa); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "an accept error", func() bool { return strings.Contains(log.String(), "accept4: too many open files") })
}

// TestIdleSlowTarget: a target that takes bytes slowly (a 4 KiB window,
// 100 KB/s) keeps a session alive past the idle timeout — bytes are
// moving, a few at a time — on both engines. The event loop's partial
// write of held bytes is pinned by TestSlowReaderIdle, which shrinks the
// splitter's send buffer so that the write really comes out in parts.
func TestIdleSlowTarget(t *testing.T) { forEngines(t, testIdleSlowTarget) }

func testIdleSlowTarget(t *testing.T, eng Engine) {
	const (
		idle  = 200 * time.Millisecond
		total = 256 << 10
	)
	got := make(chan int, 1)
	s := rawTargetSmallWindow(t, eng, Options{IdleTimeout: idle}, func(c *net.TCPConn) {
		c.Write([]byte("220 slow\r\n"))
		var buf [1 << 10]byte
		n := 0
		for n < total {
			m, err := c.Read(buf[:])
			n += m
			if err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond) // 100 KB/s at most: seconds for the whole
		}
		got <- n
	})
	c := dial(t, s, netip.MustParseAddr("127.1.0.1"), mx1)
	t0 := time.Now()
	// Written at once, before the target is connected: the splitter's
	// first read fills its buffer, and most of it waits for the target.
	go c.c.Write(make([]byte, total))
	select {
	case n := <-got:
		if n != total {
			t.Errorf("target got %d of %d bytes in %v (idle timeout %v): the session was cut while bytes were moving", n, total, time.Since(t0), idle)
		}
		t.Logf("%d bytes in %v", n, time.Since(t0))
	case <-time.After(60 * time.Second):
		t.Fatal("target still reading after 60s")
	}
}

// rawTargetSmallWindow is rawTarget with a 4 KiB receive buffer on the
// target's sockets (set on the listener, so the window is small from the
// handshake on).
func rawTargetSmallWindow(t *testing.T, eng Engine, opts Options, serve func(c *net.TCPConn)) *Splitter {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c.(*net.TCPConn))
	}()
	p := &steer.Plan{Rules: []steer.Rule{{Name: "raw", Family: 4, DstAddr: mx1.Addr(), DstPort: 25, Target: "raw", To: ln.Addr().(*net.TCPAddr).AddrPort()}}}
	opts.Engine = eng
	return start(t, p, opts)
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// TestLocalDialErrKinds: which dial errors are the splitter's own (the
// target stays up, no failover) and which are the target's, wrapped as
// net and the event loop wrap them.
func TestLocalDialErrKinds(t *testing.T) {
	wrap := func(e error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", e)}
	}
	for _, tc := range []struct {
		err   error
		local bool
	}{
		{wrap(syscall.EMFILE), true},
		{wrap(syscall.ENFILE), true},
		{wrap(syscall.ENOBUFS), true},
		{wrap(syscall.ENOMEM), true},
		{wrap(syscall.EADDRNOTAVAIL), true}, // out of ephemeral ports
		{fmt.Errorf("dial tcp 192.0.2.1:25: socket: %w", syscall.EMFILE), true},
		{wrap(syscall.ECONNREFUSED), false},
		{wrap(syscall.ETIMEDOUT), false},
		{wrap(syscall.EHOSTUNREACH), false},
		{wrap(syscall.ENETUNREACH), false},
		{fmt.Errorf("dial tcp 192.0.2.1:25: %w", errDialTimeout), false},
	} {
		if got := localDialErr(tc.err); got != tc.local {
			t.Errorf("localDialErr(%v) = %v, want %v", tc.err, got, tc.local)
		}
	}
}
