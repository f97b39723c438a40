//go:build linux

package splitter

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const defaultEngine = EngineEventLoop

// eventLoops is the event-loop engine: loops share the listeners (each
// accepts on all of them), and a connection stays on the loop that
// accepted it.
type eventLoops struct {
	s     *Splitter
	loops []*loop
}

// A loop is one goroutine that waits only for its epoll set (see wait) and
// does all the work of its connections: accept, the decision, connect, PROXY headers,
// the relay and timers. All its fields but mu, cmds and dead are owned by
// that goroutine.
//
// Invariants: every fd registered in epfd has an entry in fds with the
// generation stored in its epoll data, so an event for a closed (and
// perhaps reused) fd is recognised and dropped; sessions holds every open
// session of the loop, each counted once in the splitter's active and
// connsWG.
type loop struct {
	s    *Splitter
	epfd int
	evfd int // eventfd: wakes epoll_wait for commands

	mu   sync.Mutex
	cmds []func()
	dead bool // the loop has exited; evfd is closed

	fds       []fdEntry // by fd
	gen       uint32
	timers    timerHeap
	base      time.Time
	now       int64    // nanoseconds since base, as of the last epoll_wait
	nEvents   int      // how many events the last epoll_wait returned
	buf       []byte   // the read buffer all relays of the loop share
	pipes     []pipe   // spare splice pipes
	file      *os.File // epfd in Go's poller (waitInNetpoll); nil if epoll_wait blocks
	rc        syscall.RawConn
	deadline  time.Time             // file's read deadline: the earliest timer
	poll      func(fd uintptr) bool // pollOnce
	events    []unix.EpollEvent
	pollN     int
	pollErr   error
	sessions  map[*esession]struct{}
	listeners map[*listener]*loopListener
	exit      bool
}

type fdEntry struct {
	gen uint32
	h   handler
}

// A handler receives the epoll events of one fd.
type handler interface{ event(ev uint32) }

// relayBuf is the shared read buffer: a read that fills it switches that
// direction of the session to splice, which suits bodies, not commands.
const relayBuf = 64 << 10

func newEventLoops(s *Splitter) (*eventLoops, error) {
	el := &eventLoops{s: s}
	for range runtime.GOMAXPROCS(0) {
		lp, err := newLoop(s)
		if err != nil {
			for _, lp := range el.loops {
				lp.do(func() { lp.exit = true })
			}
			return nil, err
		}
		el.loops = append(el.loops, lp)
		s.bg.Add(1)
		go lp.run()
	}
	return el, nil
}

func newLoop(s *Splitter) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("splitter: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("splitter: eventfd: %w", err)
	}
	lp := &loop{s: s, epfd: epfd, evfd: evfd, base: time.Now(), buf: make([]byte, relayBuf), sessions: map[*esession]struct{}{}}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("splitter: epoll_ctl: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with the poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("splitter: epoll fd: %w", err)
	}
	lp.file = os.NewFile(uintptr(epfd), "epoll")
	lp.poll = lp.pollOnce
	if lp.rc, err = lp.file.SyscallConn(); err != nil {
		lp.file.Close()
		unix.Close(evfd)
		return nil, fmt.Errorf("splitter: epoll fd: %w", err)
	}
	return lp, nil
}

// do runs f on the loop's goroutine; false if the loop has exited.
func (lp *loop) do(f func()) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.dead {
		return false
	}
	lp.cmds = append(lp.cmds, f)
	var one [8]byte // the eventfd counter: a native-endian uint64
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(lp.evfd, one[:])
	return true
}

func (lp *loop) clock() int64 { return int64(time.Since(lp.base)) }

func (lp *loop) run() {
	defer lp.s.bg.Done()
	events := make([]unix.EpollEvent, 256)
	for !lp.exit {
		n, err := lp.wait(events)
		lp.now = lp.clock()
		lp.nEvents = n
		if err != nil {
			lp.s.log.Error("splitter: epoll_wait", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range n {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == lp.evfd {
				lp.commands()
				continue
			}
			if fd < len(lp.fds) {
				if e := lp.fds[fd]; e.h != nil && e.gen == uint32(ev.Pad) {
					e.h.event(ev.Events)
				}
			}
		}
		lp.runTimers()
	}
	// Exit: what is left is closed (Shutdown has finished the sessions).
	for ss := range lp.sessions {
		ss.finish(nil)
	}
	for _, p := range lp.pipes {
		p.close()
	}
	lp.mu.Lock()
	lp.dead = true
	unix.Close(lp.evfd)
	lp.mu.Unlock()
	lp.file.Close() // and epfd with it
}

// wait returns the loop's next events, or none once the earliest timer is
// due.
//
// The loop's epoll fd is itself registered in Go's poller (an epoll set is
// readable while it has events), and the loop goroutine parks there like
// any goroutine blocked on a socket, with the earliest timer as its
// deadline; the events are then taken with a non-blocking epoll_pwait.
// Blocking in epoll_wait instead holds a thread, and every wake-up must
// get a P back from the scheduler: measured in this session, that cost
// 0.74 of the goroutine engine's CPU per connection against 0.63 here
// (three interleaved pairs of harness runs), and twice the goroutine
// engine's CPU when the splitter shares its process with busy goroutines
// (BenchmarkSession, where the clients and sinks run in the same process:
// 480 against 230 µs per session with GOMAXPROCS=1).
func (lp *loop) wait(events []unix.EpollEvent) (int, error) {
	var dl time.Time
	if len(lp.timers) > 0 {
		dl = lp.base.Add(time.Duration(lp.timers[0].when))
	}
	if !dl.Equal(lp.deadline) {
		lp.file.SetReadDeadline(dl)
		lp.deadline = dl
	}
	lp.events = events
	err := lp.rc.Read(lp.poll)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err == nil && lp.pollErr != unix.EINTR {
		err = lp.pollErr
	}
	return lp.pollN, err
}

// pollOnce is the function RawConn.Read calls, as lp.poll: bound once
// (in newLoop), since a closure per wait would be an allocation per
// wake-up.
func (lp *loop) pollOnce(fd uintptr) bool {
	lp.pollN, lp.pollErr = epollPoll(int(fd), lp.events)
	return lp.pollN > 0 || lp.pollErr != nil
}

func (lp *loop) commands() {
	var b [8]byte
	unix.Read(lp.evfd, b[:])
	lp.mu.Lock()
	cmds := lp.cmds
	lp.cmds = nil
	lp.mu.Unlock()
	for _, f := range cmds {
		f()
	}
}

// register adds fd to the loop's epoll set with events, for h.
func (lp *loop) register(fd int, events uint32, h handler) error {
	for fd >= len(lp.fds) {
		lp.fds = append(lp.fds, make([]fdEntry, max(64, len(lp.fds)))...)
	}
	lp.gen++
	lp.fds[fd] = fdEntry{gen: lp.gen, h: h}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(lp.gen)}
	if err := sysEpollAdd(lp.epfd, fd, &ev); err != nil {
		lp.fds[fd] = fdEntry{}
		return err
	}
	return nil
}

// closeFD closes a connection's fd. Closing removes it from the epoll set
// (nothing else holds the file), so no EPOLL_CTL_DEL is made; an event of
// the same batch that still names it is dropped by the generation check.
func (lp *loop) closeFD(fd int) {
	if fd < len(lp.fds) {
		lp.fds[fd] = fdEntry{}
	}
	sysClose(fd)
}

// Timers: a binary heap of deadlines, checked after each epoll_wait, whose
// timeout is the earliest of them.

// A timer is armed while i >= 0 (its index in the heap).
type timer struct {
	when int64
	i    int
	h    timerHandler
}

// A timerHandler is what a timer runs when it fires. An interface, not a
// func: a session's method value would be an allocation per session, its
// pointer in an interface is none.
type timerHandler interface{ onTimer() }

// timerFunc runs a function as a timer's handler.
type timerFunc func()

func (f timerFunc) onTimer() { f() }

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].i = i; h[j].i = j }
func (h *timerHeap) Push(x any)        { t := x.(*timer); t.i = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.i = -1
	return t
}

// set arms t to fire at when (loop time), re-arming it if it was armed.
func (lp *loop) setTimer(t *timer, when int64) {
	t.when = when
	if t.i >= 0 {
		heap.Fix(&lp.timers, t.i)
		return
	}
	heap.Push(&lp.timers, t)
}

func (lp *loop) stopTimer(t *timer) {
	if t.i >= 0 {
		heap.Remove(&lp.timers, t.i)
	}
}

func (lp *loop) runTimers() {
	if len(lp.timers) == 0 {
		return
	}
	lp.now = lp.clock()
	for len(lp.timers) > 0 && lp.timers[0].when <= lp.now {
		t := heap.Pop(&lp.timers).(*timer)
		t.h.onTimer()
	}
}

// Splice pipes: a direction that splices borrows one from its loop while
// bytes are in it.

type pipe struct{ r, w int }

func (p pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

func (lp *loop) getPipe() (pipe, error) {
	if n := len(lp.pipes); n > 0 {
		p := lp.pipes[n-1]
		lp.pipes = lp.pipes[:n-1]
		return p, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return pipe{}, err
	}
	// A bigger pipe moves a body in fewer calls; the default (64 KiB) if
	// the system refuses.
	unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, chunk)
	return pipe{fds[0], fds[1]}, nil
}

func (lp *loop) putPipe(p pipe) {
	if len(lp.pipes) < 16 {
		lp.pipes = append(lp.pipes, p)
		return
	}
	p.close()
}

// Listeners.

// listen opens a listening socket on local: non-blocking, SO_REUSEADDR
// (as net does), IPv6 only for IPv6 addresses.
func (el *eventLoops) listen(ep, local netip.AddrPort) (*listener, error) {
	sa, family := sockaddr(local)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("splitter: entry point %v: socket: %w", ep, err)
	}
	fail := func(op string, err error) (*listener, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("splitter: entry point %v: %s %v: %w", ep, op, local, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	// Accepted sockets inherit TCP_NODELAY from the listener on Linux:
	// one setsockopt per listener instead of one per connection.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fail("setsockopt", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, 1<<16-1); err != nil { // capped by net.core.somaxconn
		return fail("listen", err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return &listener{entry: ep, fd: fd, addr: addrPort(bound), done: make(chan struct{})}, nil
}

// start makes every loop accept on l.
func (el *eventLoops) start(l *listener) {
	excl := len(el.loops) > 1
	for _, lp := range el.loops {
		lp.do(func() { lp.addListener(l, excl) })
	}
}

// closeListener stops every loop accepting on l, then closes it: a shared
// fd must leave every epoll set before it is closed.
func (el *eventLoops) closeListener(l *listener) {
	var wg sync.WaitGroup
	for _, lp := range el.loops {
		wg.Add(1)
		if !lp.do(func() { lp.removeListener(l); wg.Done() }) {
			wg.Done()
		}
	}
	wg.Wait()
	unix.Close(l.fd)
	close(l.done)
}

// closeAll finishes every session of every loop, returning how many.
func (el *eventLoops) closeAll() int {
	var wg sync.WaitGroup
	counts := make([]int, len(el.loops))
	for i, lp := range el.loops {
		wg.Add(1)
		if !lp.do(func() {
			defer wg.Done()
			for ss := range lp.sessions {
				counts[i]++
				ss.finish(nil)
			}
		}) {
			wg.Done()
		}
	}
	wg.Wait()
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// stop ends the loops (after the sessions have).
func (el *eventLoops) stop() {
	for _, lp := range el.loops {
		lp.do(func() { lp.exit = true })
	}
}

// A loopListener is a listener as one loop sees it.
type loopListener struct {
	lp      *loop
	l       *listener
	excl    bool
	off     bool // taken out of the epoll set for an accept-error backoff
	backoff time.Duration
	retry   timer
}

func (lp *loop) addListener(l *listener, excl bool) {
	ll := &loopListener{lp: lp, l: l, excl: excl, retry: timer{i: -1}}
	ll.retry.h = ll
	if lp.listeners == nil {
		lp.listeners = map[*listener]*loopListener{}
	}
	lp.listeners[l] = ll
	if err := ll.arm(); err != nil {
		lp.s.log.Error("splitter: accept", "entry", l.entry, "err", err)
	}
}

func (ll *loopListener) arm() error {
	// Level-triggered: one accept per wake-up would do; a few are taken.
	// EPOLLEXCLUSIVE wakes one loop per connection, not all.
	ev := uint32(unix.EPOLLIN)
	if ll.excl {
		ev |= unix.EPOLLEXCLUSIVE
	}
	return ll.lp.register(ll.l.fd, ev, ll)
}

func (lp *loop) removeListener(l *listener) {
	ll := lp.listeners[l]
	if ll == nil {
		return
	}
	delete(lp.listeners, l)
	lp.stopTimer(&ll.retry)
	if !ll.off {
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
		lp.fds[l.fd] = fdEntry{}
	}
}

// acceptBatch bounds the accepts per wake-up, so that one busy listener
// does not starve the relays.
const acceptBatch = 16

func (ll *loopListener) event(uint32) {
	lp := ll.lp
	// A wake-up for this connection alone (one client at a time): accept
	// it and no more, without the accept4 that would only say EAGAIN —
	// the listener is level-triggered, and the epoll_pwait the loop makes
	// before it parks reports it again if another is waiting. When the
	// loop is busy, accepting until EAGAIN saves epoll_pwait calls.
	batch := acceptBatch
	if lp.nEvents == 1 {
		batch = 1
	}
	for range batch {
		fd, peer, err := accept4(ll.l.fd)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED:
				if err == unix.EAGAIN {
					return
				}
				continue
			}
			// Out of file descriptors or memory: stop listening a while.
			ll.backoff = min(max(2*ll.backoff, 5*time.Millisecond), time.Second)
			lp.s.log.Error("splitter: accept", "entry", ll.l.entry, "err", os.NewSyscallError("accept4", err), "backoff", ll.backoff)
			unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, ll.l.fd, nil)
			lp.fds[ll.l.fd] = fdEntry{}
			ll.off = true
			lp.setTimer(&ll.retry, lp.clock()+int64(ll.backoff))
			return
		}
		ll.backoff = 0
		lp.accept(fd, peer, ll.l)
	}
}

// onTimer resumes accepting after a backoff.
func (ll *loopListener) onTimer() {
	ll.off = false
	if err := ll.arm(); err != nil {
		ll.lp.s.log.Error("splitter: accept", "entry", ll.l.entry, "err", err)
	}
}

func sockaddr(ap netip.AddrPort) (unix.Sockaddr, int) {
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}, unix.AF_INET
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16(), ZoneId: zoneIndex(ap.Addr().Zone())}, unix.AF_INET6
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		// Zones are not kept: routing and the PROXY header use none.
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

var errDialTimeout = errors.New("i/o timeout")
