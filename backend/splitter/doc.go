// Package splitter is the in-process enforcement point of a steer.Plan: an
// SMTP connection splitter that listens on the plan's entry points, decides
// per connection where the sender goes, and relays the connection to that
// server, keeping the client's address with the PROXY protocol.
//
// A [Splitter] is started with [New] and runs until [Splitter.Shutdown] or
// [Splitter.Close]. [Splitter.Apply] swaps a new plan in atomically:
// connections in flight keep running on the plan they started with, and the
// listeners of entry points present in both plans are never closed, so no
// connection is refused during a reload.
//
// Per connection the work is: one atomic load of the current router, one
// Route call (the compiled router is allocation-free; a *steer.Plan works
// too), limits checked with atomic counters, then a dial with a timeout and a
// two-way relay with half-close.
//
// # Engines
//
// Two engines do that work, with the same behaviour, options, counters and
// logs ([Options.Engine]). On Linux the default is the event loop: one
// goroutine per GOMAXPROCS, each waiting only for its own epoll set (which
// it parks on in Go's poller, so that it shares the scheduler with the
// program's other goroutines), with non-blocking sockets registered once,
// edge-triggered with EPOLLRDHUP (a short read with the peer's FIN in is
// the end, with no read more to find it; after a reset or TCP urgent data,
// which end reads early, it reads on to EAGAIN), no getsockname or getpeername (accept4 and the listener say the
// addresses), no EPOLL_CTL_DEL before a close, and timers (header, dial,
// tarpit, idle, session) in a heap checked at each wait. Short messages move
// with read and write through the loop's buffer; once a read fills it, that
// direction splices through a pipe. Elsewhere, or with [EngineGoroutine],
// connections are served by goroutines on the net package, and the relay's
// io.Copy between *net.TCPConn splices on Linux. The event loop makes about
// two thirds of the goroutine engine's system calls per connection and
// costs about a third less CPU: level with HAProxy and nginx at 16 and 128
// concurrent clients, 15% above them at one, where each wake-up goes
// through Go's poller (benchmarks/README.md, "## splitter").
//
// # Failover
//
// The plan names one target per rule. When it refuses, times out or is
// marked down by the health checks, the splitter does what a sender does
// after a failed MX: it tries the same source on the plan's other entry
// points of the same port and family, in rule order, and relays to the first
// distinct target that answers. In the seed policy an English sender in the
// lower half goes to A on MX 1 and to B on MX 2, so A down means B; a foreign
// sender goes to the strict server on every MX, so it never fails over to a
// lenient one. When every candidate fails the client gets 421 and retries
// later, as SMTP intends. A dial that fails for want of a local resource
// (the process out of file descriptors, EMFILE or ENFILE, out of memory,
// or the host out of local ports, EADDRNOTAVAIL) is not the target's fault: the target is not marked down, no
// other is tried (it would fail alike), the client gets 421, and the log
// says "out of local resources".
//
// # Limits
//
// Connections over [Options.MaxConns], or over [Options.MaxConnsPerSource]
// from one source prefix, connections that match no rule and connections no
// target accepts get "421 4.7.0 …" and are closed. A session with no byte in
// either direction for [Options.IdleTimeout] (the event loop closes it on
// time; the goroutine engine checks in windows of a quarter of it, so it
// ends between 1 and 1.25 times the timeout) or older than
// [Options.SessionTimeout] is closed.
package splitter
