//go:build linux

package splitter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/geosteer/geosteer/steer"
	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// An esession is one client connection on an event loop, from accept to
// close; its loop's goroutine owns it. It moves through the phases in
// order (skipping those that do not apply) and ends in finish, once.
type esession struct {
	lp    *loop
	phase phase
	entry netip.AddrPort
	local netip.AddrPort // the listener's address (unspecified for a wildcard listener)
	peer  netip.AddrPort // the client socket's peer, from accept4
	src   netip.AddrPort // the client: the peer, or what a trusted front's header carries
	// hsrc and hdst are what a trusted front's header said, for the header
	// passed on; nil when it sent none (or LOCAL).
	hsrc, hdst net.Addr
	hdr        []byte // a trusted front's header as it arrives; then the bytes after it
	headLen    int    // the PROXY header's length, at the start of what goes to the target
	bucket     int

	st  *state
	dec steer.Decision
	t   *target // the target connecting or relaying to
	fo  failover

	c, sv      ep
	dir        [2]direction // client to server (in), server to client (out)
	tm         timer
	lastActive int64
	end        int64 // session deadline in loop time; 0 for none
}

type phase uint8

const (
	phaseAccepted   phase = iota
	phaseHeader           // reading a trusted front's PROXY header
	phaseTarpit           // asleep
	phaseConnecting       // waiting for a target's connect
	phaseRelay
	phaseDone
)

// An ep is one socket of a session. readable means the socket may have
// bytes (or EOF) to read: set by an event, cleared by EAGAIN or a short
// read; writable likewise for room to write. With edge-triggered epoll
// nothing is reported again until the state changes, so a flag is cleared
// only when the kernel said so.
type ep struct {
	ss                 *esession
	fd                 int
	readable, writable bool
	rdhup              bool // the peer's FIN has arrived (EPOLLRDHUP): a short read has reached EOF
	// hup is set by EPOLLERR or EPOLLHUP (a reset): a short read does not
	// say the end was clean, so reading goes on until the error or EOF.
	hup bool
	// urgent is set by EPOLLPRI: the peer sent TCP urgent data, and Linux
	// stops every read at its mark (and splice cannot pass it), so a short
	// read says nothing: read until EAGAIN, never splice.
	urgent     bool
	registered bool
}

// A direction moves bytes from one socket of a session to the other: with
// read and write through the loop's buffer, and once a read fills that
// buffer (a message body, not a command), with splice through a pipe.
type direction struct {
	from, to *ep
	pend     []byte // read and not yet written: the destination was full
	splice   bool
	pipe     pipe // held while inPipe > 0
	inPipe   int
	n        int64 // bytes written to the destination
	eof      bool  // the source's EOF was read
	done     bool  // and passed on
}

var errDone = errors.New("session over") // internal: the relay ended normally

func (lp *loop) accept(fd int, peer netip.AddrPort, l *listener) {
	s := lp.s
	s.accepted.Add(1)
	s.active.Add(1)
	s.connsWG.Add(1)
	ss := &esession{lp: lp, entry: l.entry, local: l.addr, peer: peer, src: peer, bucket: -1}
	ss.c = ep{ss: ss, fd: fd, writable: true}
	ss.sv = ep{ss: ss, fd: -1}
	ss.dir[0] = direction{from: &ss.c, to: &ss.sv}
	ss.dir[1] = direction{from: &ss.sv, to: &ss.c}
	ss.tm = timer{i: -1, h: ss}
	lp.sessions[ss] = struct{}{}
	if m := s.opts.MaxConns; m > 0 && s.active.Load() > int64(m) {
		ss.reject(rejectMaxConns, replyBusy)
		return
	}
	if s.trusted(peer.Addr()) {
		ss.phase = phaseHeader
		if err := ss.registerClient(); err != nil {
			s.log.Warn("splitter: bad PROXY header from trusted front", "front", ss.src, "err", err)
			ss.reject(rejectProxyHeader, nil)
			return
		}
		lp.setTimer(&ss.tm, lp.clock()+int64(s.opts.HeaderTimeout))
		return
	}
	ss.admit()
}

func (ss *esession) registerClient() error {
	if ss.c.registered {
		return nil
	}
	ss.c.registered = true
	return ss.lp.register(ss.c.fd, unix.EPOLLIN|unix.EPOLLPRI|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET, &ss.c)
}

// admit applies the per-source limit and the decision, then connects (at
// once, or after the tarpit).
func (ss *esession) admit() {
	s := ss.lp.s
	var why rejectReason
	if ss.bucket, ss.st, ss.dec, why = s.admit(ss.src.Addr(), ss.entry); why != admitted {
		ss.reject(why, rejectReply[why])
		return
	}
	rs := &ss.st.rules[ss.dec.Rule()]
	if rs.tarpit > 0 {
		ss.phase = phaseTarpit
		ss.lp.setTimer(&ss.tm, ss.lp.clock()+int64(rs.tarpit))
		return
	}
	ss.forward()
}

func (ss *esession) event(e *ep, ev uint32) {
	if ev&unix.EPOLLRDHUP != 0 {
		e.rdhup = true
	}
	if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.hup = true
	}
	if ev&unix.EPOLLPRI != 0 {
		e.urgent = true
	}
	if ev&(unix.EPOLLIN|unix.EPOLLPRI|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.readable = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.writable = true
	}
	switch ss.phase {
	case phaseHeader:
		if e.readable {
			ss.readHeader()
		}
	case phaseConnecting:
		if e == &ss.sv && e.writable {
			ss.connected()
		}
	case phaseRelay:
		ss.pump()
	}
}

func (e *ep) event(ev uint32) { e.ss.event(e, ev) }

func (ss *esession) onTimer() {
	s := ss.lp.s
	switch ss.phase {
	case phaseHeader:
		s.log.Warn("splitter: bad PROXY header from trusted front", "front", ss.src, "err", errHeaderTimeout)
		ss.reject(rejectProxyHeader, nil)
	case phaseTarpit:
		ss.forward()
	case phaseConnecting:
		ss.lp.closeFD(ss.sv.fd)
		ss.sv = ep{ss: ss, fd: -1}
		ss.dialFailed(ss.t, fmt.Errorf("dial tcp %v: %w", ss.t.addr, errDialTimeout))
		ss.tryNext()
	case phaseRelay:
		now := ss.lp.now
		if ss.end > 0 && now >= ss.end {
			s.sessionTimeouts.Add(1)
			ss.finish(errSessionTimeout)
			return
		}
		idle := int64(s.opts.IdleTimeout)
		if idle > 0 && now-ss.lastActive >= idle {
			s.idleTimeouts.Add(1)
			ss.finish(errIdle)
			return
		}
		ss.armRelayTimer()
	}
}

// armRelayTimer sets the session's timer to its next deadline: idle
// (from the last byte moved) or the session's end. The idle deadline is
// not moved on every byte; a timer that fires early re-arms.
func (ss *esession) armRelayTimer() {
	when := int64(-1)
	if idle := int64(ss.lp.s.opts.IdleTimeout); idle > 0 {
		when = ss.lastActive + idle
	}
	if ss.end > 0 && (when < 0 || ss.end < when) {
		when = ss.end
	}
	if when >= 0 {
		ss.lp.setTimer(&ss.tm, when)
	}
}

// readHeader reads a trusted front's header as it arrives, parses it
// (go-proxyproto, as the goroutine engine does) and admits the session
// on the address it carries.
func (ss *esession) readHeader() {
	lp, s := ss.lp, ss.lp.s
	bad := func(err error) {
		s.log.Warn("splitter: bad PROXY header from trusted front", "front", ss.src, "err", err)
		ss.reject(rejectProxyHeader, nil)
	}
	for {
		want := min(len(lp.buf), 16+1<<16-len(ss.hdr))
		n, err := sysRead(ss.c.fd, lp.buf[:want])
		switch {
		case err == unix.EAGAIN:
			ss.c.readable = false
			return
		case err == unix.EINTR:
			continue
		case err != nil:
			bad(err)
			return
		case n == 0:
			bad(io.ErrUnexpectedEOF)
			return
		}
		ss.hdr = append(ss.hdr, lp.buf[:n]...)
		if n < want && !ss.c.rdhup && !ss.c.hup && !ss.c.urgent {
			ss.c.readable = false
		}
		hl, err := proxyHeaderLen(ss.hdr)
		if err != nil {
			bad(err)
			return
		}
		if hl == 0 {
			if !ss.c.readable {
				return
			}
			continue
		}
		h, err := parseProxyHeader(ss.hdr[:hl])
		if err != nil {
			bad(err)
			return
		}
		if h.Command.IsProxy() {
			src, ok1 := h.SourceAddr.(*net.TCPAddr)
			dst, ok2 := h.DestinationAddr.(*net.TCPAddr)
			if !ok1 || !ok2 {
				s.log.Warn("splitter: PROXY header from trusted front is not TCP", "front", ss.src)
				ss.reject(rejectProxyHeader, nil)
				return
			}
			ss.hsrc, ss.hdst = src, dst
			ss.src = src.AddrPort()
		}
		ss.hdr = slices.Clip(ss.hdr[hl:])
		if len(ss.hdr) == 0 {
			ss.hdr = nil
		}
		lp.stopTimer(&ss.tm)
		ss.phase = phaseAccepted
		ss.admit()
		return
	}
}

// reject answers msg (if any) and closes the connection.
func (ss *esession) reject(why rejectReason, msg []byte) {
	s := ss.lp.s
	s.rejected[why].Add(1)
	if msg != nil {
		// One try: the socket is new, its send buffer empty.
		sysSend(ss.c.fd, msg)
	}
	if why != rejectMaxConns && why != rejectPerSource {
		s.log.Info("splitter: refused", "src", ss.src, "entry", ss.entry, "reason", rejectNames[why])
	} else if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("splitter: refused", "src", ss.src, "entry", ss.entry, "reason", rejectNames[why])
	}
	ss.finish(nil)
}

// forward starts connecting to the rule's target.
func (ss *esession) forward() {
	ss.t = ss.st.rules[ss.dec.Rule()].target
	ss.fo.init(ss.st, ss.src, ss.entry, ss.t)
	ss.tryNext()
}

// tryNext connects to the next candidate target, or refuses the client
// when none is left.
func (ss *esession) tryNext() {
	for {
		t := ss.fo.next(ss.lp.s.log)
		if t == nil {
			ss.st.rules[ss.dec.Rule()].stats.failures.Add(1)
			ss.reject(rejectNoTarget, replyNoHost)
			return
		}
		ss.t = t
		if ss.dial(t) {
			return
		}
	}
}

// dial starts a non-blocking connect to t; false if it failed at once.
func (ss *esession) dial(t *target) bool {
	lp := ss.lp
	family := unix.AF_INET6
	if t.addr.Addr().Is4() || t.addr.Addr().Is4In6() {
		family = unix.AF_INET
	}
	fd, err := sysSocket(family)
	if err != nil {
		ss.dialFailed(t, fmt.Errorf("dial tcp %v: socket: %w", t.addr, err))
		return false
	}
	if err := sysSetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		sysClose(fd)
		ss.dialFailed(t, fmt.Errorf("dial tcp %v: setsockopt: %w", t.addr, err))
		return false
	}
	if ss.lp.s.opts.IdleTimeout < 0 {
		setKeepAlive(fd)
	}
	err = sysConnect(fd, t.addr)
	if err != nil && err != unix.EINPROGRESS {
		sysClose(fd)
		ss.dialFailed(t, fmt.Errorf("dial tcp %v: connect: %w", t.addr, err))
		return false
	}
	ss.sv = ep{ss: ss, fd: fd, registered: true}
	if err := lp.register(fd, unix.EPOLLIN|unix.EPOLLPRI|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET, &ss.sv); err != nil {
		sysClose(fd)
		ss.sv = ep{ss: ss, fd: -1}
		ss.dialFailed(t, fmt.Errorf("dial tcp %v: epoll_ctl: %w", t.addr, err))
		return false
	}
	ss.phase = phaseConnecting
	lp.setTimer(&ss.tm, lp.clock()+int64(lp.s.opts.DialTimeout))
	return true
}

// connected runs when the target's socket turns writable (or fails).
func (ss *esession) connected() {
	if err := sysSoError(ss.sv.fd); err != nil {
		ss.lp.closeFD(ss.sv.fd)
		ss.sv = ep{ss: ss, fd: -1}
		ss.lp.stopTimer(&ss.tm)
		ss.dialFailed(ss.t, fmt.Errorf("dial tcp %v: connect: %w", ss.t.addr, err))
		ss.tryNext()
		return
	}
	ss.relay()
}

func (ss *esession) dialFailed(t *target, err error) {
	s := ss.lp.s
	if localDialErr(err) {
		// Not the target's fault, and any other would fail alike: no
		// target marked down, no failover.
		s.log.Error("splitter: dial: out of local resources", "target", t.name, "addr", t.addr, "err", err)
		ss.fo.stop()
		return
	}
	t.dialFailures.Add(1)
	if s.opts.HealthInterval > 0 {
		t.setUp(s.log, false, err)
	} else {
		s.log.Warn("splitter: dial", "target", t.name, "addr", t.addr, "err", err)
	}
}

// relay starts relaying: the PROXY header and a trusted front's early
// bytes go first, in one write.
func (ss *esession) relay() {
	lp, s := ss.lp, ss.lp.s
	ss.phase = phaseRelay
	rs := &ss.st.rules[ss.dec.Rule()]
	t := ss.t
	rs.relaying(t)
	var head []byte
	if v := s.opts.ProxyProtocol; v > 0 {
		src, dst := ss.hsrc, ss.hdst
		if src == nil {
			local := ss.local
			if local.Addr().IsUnspecified() { // a wildcard listener: ask which address
				if sa, err := unix.Getsockname(ss.c.fd); err == nil {
					local = addrPort(sa)
				}
			}
			src, dst = net.TCPAddrFromAddrPort(ss.peer), net.TCPAddrFromAddrPort(local)
		}
		var err error
		if head, err = proxyproto.HeaderProxyFromAddrs(byte(v), src, dst).Format(); err != nil {
			s.log.Warn("splitter: PROXY header", "target", t.name, "err", err)
			ss.finish(nil)
			return
		}
	}
	ss.headLen = len(head) // not the client's bytes: BytesIn leaves it out
	if head = append(head, ss.hdr...); len(head) > 0 {
		ss.dir[0].pend = head
	}
	ss.hdr = nil
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("splitter: relay", "src", ss.src, "entry", ss.entry,
			"rule", ss.st.plan.Rules[ss.dec.Rule()].Name, "target", t.name, "addr", t.addr)
	}
	if s.opts.IdleTimeout < 0 {
		setKeepAlive(ss.c.fd)
	}
	if err := ss.registerClient(); err != nil {
		ss.finish(err)
		return
	}
	ss.lastActive = lp.now
	ss.end = 0
	if d := s.opts.SessionTimeout; d > 0 {
		ss.end = lp.now + int64(d)
	}
	lp.stopTimer(&ss.tm)
	ss.armRelayTimer()
	ss.pump()
}

// pump moves what can be moved both ways.
func (ss *esession) pump() {
	for i := range ss.dir {
		if err := ss.move(&ss.dir[i]); err != nil {
			if err == errDone {
				err = nil
			}
			ss.finish(err)
			return
		}
	}
}

const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

// move relays d until its source has nothing to read or its destination
// no room: the edges that follow resume it. A non-nil error ends the
// session (errDone: both directions have ended).
func (ss *esession) move(d *direction) error {
	lp := ss.lp
	for {
		// What is held goes first.
		if len(d.pend) > 0 {
			if !d.to.writable {
				return nil
			}
			n, err := sysSend(d.to.fd, d.pend)
			if err != nil && err != unix.EAGAIN {
				return err
			}
			d.n += int64(n)
			if n > 0 {
				ss.lastActive = lp.now // bytes are moving, even if not all of them
			}
			if d.pend = d.pend[n:]; len(d.pend) > 0 {
				d.to.writable = false // a partial write: the socket's buffer is full
				return nil
			}
			d.pend = nil
		}
		if d.inPipe > 0 {
			if !d.to.writable {
				return nil
			}
			n, err := sysSplice(d.pipe.r, d.to.fd, d.inPipe)
			if err == unix.EAGAIN {
				d.to.writable = false
				return nil
			}
			if err != nil {
				return err
			}
			d.n += int64(n)
			d.inPipe -= n
			ss.lastActive = lp.now
			if d.inPipe > 0 {
				continue // tried again: EAGAIN says when it is full
			}
			lp.putPipe(d.pipe)
		}
		if d.eof {
			if d.done {
				return nil
			}
			d.done = true
			other := &ss.dir[0]
			if d == other {
				other = &ss.dir[1]
			}
			if other.done {
				return errDone // the close that follows sends the FIN
			}
			if err := sysShutdownWrite(d.to.fd); err != nil {
				return err
			}
			return nil
		}
		if !d.from.readable {
			return nil
		}
		if d.splice && !d.from.urgent {
			p, err := lp.getPipe()
			if err != nil {
				return err
			}
			n, err := sysSplice(d.from.fd, p.w, chunk)
			switch {
			case err == unix.EAGAIN:
				lp.putPipe(p)
				d.from.readable = false
				return nil
			case err == unix.EINTR:
				lp.putPipe(p)
				continue
			case err != nil:
				lp.putPipe(p)
				return err
			case n == 0:
				// Not necessarily the end: splice stops at a mark of
				// urgent data whose EPOLLPRI is not seen yet. A read
				// tells, and passes the mark.
				lp.putPipe(p)
				d.splice = false
				continue
			}
			// A short splice does not say the socket is drained (the
			// pipe may be out of slots): read again until EAGAIN.
			d.pipe, d.inPipe = p, n
			ss.lastActive = lp.now
			continue
		}
		n, err := sysRead(d.from.fd, lp.buf)
		switch {
		case err == unix.EAGAIN:
			d.from.readable = false
			return nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n == 0:
			d.eof = true
			continue
		}
		ss.lastActive = lp.now
		if n < len(lp.buf) {
			// A short read took all there was: with the peer's FIN
			// already in (EPOLLRDHUP), that was the end; else the next
			// bytes bring an edge. Not after a reset or urgent data,
			// which end reads early: then read on until EAGAIN.
			switch {
			case d.from.hup || d.from.urgent:
			case d.from.rdhup:
				d.eof = true
			default:
				d.from.readable = false
			}
		} else if !d.from.urgent {
			d.splice = true // a body: splice the rest
		}
		w := 0
		if d.to.writable {
			w, err = sysSend(d.to.fd, lp.buf[:n])
			if err != nil && err != unix.EAGAIN {
				return err
			}
			if w < 0 {
				w = 0
			}
		}
		d.n += int64(w)
		if w < n {
			d.pend = slices.Clone(lp.buf[w:n])
			d.to.writable = false
			return nil
		}
	}
}

// finish releases everything the session holds. It runs once.
func (ss *esession) finish(err error) {
	lp, s := ss.lp, ss.lp.s
	if ss.phase == phaseDone {
		return
	}
	relayed := ss.phase == phaseRelay
	ss.phase = phaseDone
	lp.stopTimer(&ss.tm)
	lp.closeFD(ss.c.fd)
	if ss.sv.fd >= 0 {
		lp.closeFD(ss.sv.fd)
	}
	for i := range ss.dir {
		if d := &ss.dir[i]; d.inPipe > 0 {
			d.pipe.close() // holds bytes no one will read
		}
	}
	if relayed {
		rs := &ss.st.rules[ss.dec.Rule()]
		in, out := uint64(max(0, ss.dir[0].n-int64(ss.headLen))), uint64(ss.dir[1].n)
		rs.stats.bytesIn.Add(in)
		rs.stats.bytesOut.Add(out)
		ss.t.bytesIn.Add(in)
		ss.t.bytesOut.Add(out)
		if err != nil && s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("splitter: relay ended", "src", ss.src, "target", ss.t.name, "in", in, "out", out, "err", err)
		}
	}
	delete(lp.sessions, ss)
	s.srcLimit.release(ss.bucket)
	s.active.Add(-1)
	s.connsWG.Done()
}

// setKeepAlive turns TCP keep-alive on with Go's defaults (15s idle and
// interval, 9 probes), as net does when the idle timeout is disabled.
func setKeepAlive(fd int) {
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9)
}
