package splitter

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/geosteer/geosteer/steer"
	proxyproto "github.com/pires/go-proxyproto"
)

// A session is one client connection from accept to close. Fields set
// before the relay starts are owned by the goroutine (or timer) serving it;
// server, timer and killed are guarded by the connSet shard's lock, since
// Shutdown reads them.
type session struct {
	s      *Splitter
	client *net.TCPConn
	entry  netip.AddrPort
	src    netip.AddrPort // the client: the peer, or what a trusted front's header carries
	// srcAddr and dstAddr are what the PROXY header to the target says.
	srcAddr, dstAddr net.Addr
	leftover         []byte // bytes a trusted front sent after its header
	st               *state
	dec              steer.Decision
	bucket           int
	end              time.Time // session deadline, zero for none
	lastActive       atomicTime
	lr               [2]io.LimitedReader // one per direction, reused for every chunk
	eofs             atomic.Int32        // directions that have seen their source's EOF
	idled            atomic.Bool         // the idle watch found the session idle (see relay)

	shard  *connShard
	server *net.TCPConn
	timer  *time.Timer
	killed bool
}

// Replies to refused clients. 421 makes a sender retry later (RFC 5321
// section 3.8), at this MX or another.
var (
	replyBusy    = []byte("421 4.7.0 Too many connections, try again later\r\n")
	replyNoRoute = []byte("421 4.3.0 No route for this connection, try again later\r\n")
	replyNoHost  = []byte("421 4.4.1 No mail server answered, try again later\r\n")
)

const chunk = 1 << 20 // bytes per splice call: the relay looks at deadlines between chunks

var (
	errIdle           = errors.New("idle timeout")
	errSessionTimeout = errors.New("session timeout")
)

func (s *Splitter) serve(c *net.TCPConn, entry netip.AddrPort) {
	ss := &session{s: s, client: c, entry: entry, bucket: -1}
	s.conns.add(ss)
	ss.srcAddr, ss.dstAddr = c.RemoteAddr(), c.LocalAddr()
	ss.src = ss.srcAddr.(*net.TCPAddr).AddrPort()
	if m := s.opts.MaxConns; m > 0 && s.active.Load() > int64(m) {
		ss.reject(rejectMaxConns, replyBusy)
		return
	}
	if s.trusted(ss.src.Addr()) && !ss.readProxyHeader() {
		ss.reject(rejectProxyHeader, nil)
		return
	}
	var why rejectReason
	if ss.bucket, ss.st, ss.dec, why = s.admit(ss.src.Addr(), entry); why != admitted {
		ss.reject(why, rejectReply[why])
		return
	}
	rs := &ss.st.rules[ss.dec.Rule()]
	if rs.tarpit > 0 && s.conns.arm(ss, rs.tarpit) {
		return // the timer runs forward; this goroutine is done
	}
	ss.forward()
}

// decide is the hot path: one atomic load, one Route call, no lock and no
// allocation (with an allocation-free router).
func (s *Splitter) decide(src netip.Addr, entry netip.AddrPort) (*state, steer.Decision) {
	st := s.cur.Load()
	return st, st.router.Route(src, entry.Addr(), entry.Port())
}

func (s *Splitter) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.opts.TrustedFronts {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// readProxyHeader reads a trusted front's PROXY header and takes the
// client's address from it. A LOCAL header (the front's own health check)
// keeps the front's address.
func (ss *session) readProxyHeader() bool {
	c := ss.client
	c.SetReadDeadline(time.Now().Add(ss.s.opts.HeaderTimeout))
	h, rest, err := readProxyHeader(c)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errHeaderTimeout
		}
		ss.s.log.Warn("splitter: bad PROXY header from trusted front", "front", ss.src, "err", err)
		return false
	}
	ss.leftover = rest
	if h.Command.IsProxy() {
		src, ok1 := h.SourceAddr.(*net.TCPAddr)
		dst, ok2 := h.DestinationAddr.(*net.TCPAddr)
		if !ok1 || !ok2 {
			ss.s.log.Warn("splitter: PROXY header from trusted front is not TCP", "front", ss.src)
			return false
		}
		ss.srcAddr, ss.dstAddr = src, dst
		ss.src = src.AddrPort()
	}
	return true
}

// errHeaderTimeout is logged when a trusted front's header does not come
// whole within Options.HeaderTimeout (both engines).
var errHeaderTimeout = errors.New("PROXY header timeout")

// readProxyHeader reads a PROXY v1 or v2 header from r as it arrives,
// returning it and any bytes read past it. The header is framed with
// [proxyHeaderLen], read by read, so one sent in pieces is accepted (as
// the event loop does); go-proxyproto, which would drop a v1 line not
// read whole by one read, then parses the framed bytes
// ([parseProxyHeader]). The caller bounds the wait with a deadline; the
// bytes held are bounded by the framing (a v1 line of 107 bytes, a v2
// header of 16+65535) and one read past it.
func readProxyHeader(r io.Reader) (*proxyproto.Header, []byte, error) {
	buf := make([]byte, 0, 256)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		hl, ferr := proxyHeaderLen(buf)
		switch {
		case ferr != nil:
			return nil, nil, ferr
		case hl > 0:
			h, perr := parseProxyHeader(buf[:hl])
			if perr != nil {
				return nil, nil, perr
			}
			var rest []byte
			if len(buf) > hl {
				rest = slices.Clone(buf[hl:])
			}
			return h, rest, nil
		case err == io.EOF:
			return nil, nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, nil, err
		}
	}
}

// reject answers msg (if any) and closes the connection.
func (ss *session) reject(why rejectReason, msg []byte) {
	s := ss.s
	s.rejected[why].Add(1)
	if msg != nil {
		ss.client.SetWriteDeadline(time.Now().Add(time.Second))
		ss.client.Write(msg)
	}
	if why != rejectMaxConns && why != rejectPerSource {
		s.log.Info("splitter: refused", "src", ss.src, "entry", ss.entry, "reason", rejectNames[why])
	} else if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("splitter: refused", "src", ss.src, "entry", ss.entry, "reason", rejectNames[why])
	}
	ss.finish()
}

// forward connects to the rule's target (or fails over), then relays.
func (ss *session) forward() {
	s := ss.s
	rs := &ss.st.rules[ss.dec.Rule()]
	t, server := ss.connect(rs.target)
	if server == nil {
		rs.stats.failures.Add(1)
		ss.reject(rejectNoTarget, replyNoHost)
		return
	}
	defer ss.finish()
	if !s.conns.setServer(ss, server) {
		return // shut down while dialling
	}
	rs.relaying(t)
	// The PROXY header and a trusted front's early bytes go in one write.
	var head []byte
	if v := s.opts.ProxyProtocol; v > 0 {
		var err error
		if head, err = proxyproto.HeaderProxyFromAddrs(byte(v), ss.srcAddr, ss.dstAddr).Format(); err != nil {
			s.log.Warn("splitter: PROXY header", "target", t.name, "err", err)
			return
		}
	}
	if head = append(head, ss.leftover...); len(head) > 0 {
		if _, err := server.Write(head); err != nil {
			// The header, the early bytes, or both: say which was sent.
			s.log.Warn("splitter: writing to target", "target", t.name,
				"proxy_header", s.opts.ProxyProtocol > 0, "early_bytes", len(ss.leftover), "err", err)
			return
		}
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("splitter: relay", "src", ss.src, "entry", ss.entry,
			"rule", ss.st.plan.Rules[ss.dec.Rule()].Name, "target", t.name, "addr", t.addr)
	}
	in, out, err := ss.relay(server)
	rs.stats.bytesIn.Add(uint64(in))
	rs.stats.bytesOut.Add(uint64(out))
	t.bytesIn.Add(uint64(in))
	t.bytesOut.Add(uint64(out))
	switch {
	case errors.Is(err, errIdle):
		s.idleTimeouts.Add(1)
	case errors.Is(err, errSessionTimeout):
		s.sessionTimeouts.Add(1)
	}
	if err != nil && s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("splitter: relay ended", "src", ss.src, "target", t.name, "in", in, "out", out, "err", err)
	}
}

// connect dials the primary target, then fails over as a sender would
// after a failed MX: the same source on the plan's other entry points of
// the same port and family, in order, each distinct target once. Targets
// marked down are skipped; if every candidate is, the primary is tried
// anyway (a check may lag a recovery).
func (ss *session) connect(primary *target) (*target, *net.TCPConn) {
	var f failover
	f.init(ss.st, ss.src, ss.entry, primary)
	for t := f.next(ss.s.log); t != nil; t = f.next(ss.s.log) {
		c, local := ss.dial(t)
		if c != nil {
			return t, c
		}
		if local {
			break // any other target would fail alike
		}
	}
	return nil, nil
}

// dial connects to t. A dial that failed for want of a local resource
// (local is true: see [localDialErr]) says nothing about t, which stays
// up, and would fail the same way for any other target: the caller stops.
func (ss *session) dial(t *target) (c *net.TCPConn, local bool) {
	s := ss.s
	// Dial by string: Dialer.DialTCP with a zero local address binds to
	// port 0 before connecting, an extra system call that also takes the
	// ephemeral port exclusively.
	nc, err := s.dialer.Dial("tcp", t.dialAddr)
	if err != nil {
		if localDialErr(err) {
			s.log.Error("splitter: dial: out of local resources", "target", t.name, "addr", t.addr, "err", err)
			return nil, true
		}
		t.dialFailures.Add(1)
		if s.opts.HealthInterval > 0 {
			t.setUp(s.log, false, err)
		} else {
			s.log.Warn("splitter: dial", "target", t.name, "addr", t.addr, "err", err)
		}
		return nil, false
	}
	return nc.(*net.TCPConn), false
}

// localDialErr reports whether a dial (or a health check) failed for
// want of a local resource — file descriptors (EMFILE, ENFILE), socket
// buffers, memory, or free local ports (EADDRNOTAVAIL from connect) —
// rather than because of the target: such a failure must not mark the
// target down, or a proxy short of ports under load would take every
// server out of service at once.
func localDialErr(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.EADDRNOTAVAIL)
}

// relay copies both ways until both sides have closed their half, or an
// error or timeout ends the session. Each direction half-closes its
// destination when its source is done, so a client's shutdown(SHUT_WR)
// reaches the server and the reply still comes back.
func (ss *session) relay(server *net.TCPConn) (in, out int64, err error) {
	client := ss.client
	now := time.Now()
	ss.lastActive.store(now)
	if d := ss.s.opts.SessionTimeout; d > 0 {
		ss.end = now.Add(d)
		// Write deadlines only at the session's end: an earlier one could
		// interrupt a splice with bytes already in its pipe.
		client.SetWriteDeadline(ss.end)
		server.SetWriteDeadline(ss.end)
	}
	if idle := ss.s.opts.IdleTimeout; idle > 0 {
		// The reads' deadlines find a session idle only while a
		// direction waits to read. One blocked writing to a peer that
		// reads nothing, with the other direction over (half-closed) or
		// blocked too, waits for no read: this watch cuts it, by
		// deadlines in the past that end both directions' calls.
		var w atomic.Pointer[time.Timer]
		var done atomic.Bool
		w.Store(time.AfterFunc(time.Duration(1<<63-1), func() {
			if done.Load() {
				return
			}
			if d := time.Since(ss.lastActive.load()); d < idle {
				w.Load().Reset(idle - d)
				return
			}
			ss.idled.Store(true)
			past := time.Unix(1, 0)
			client.SetDeadline(past)
			server.SetDeadline(past)
		}))
		w.Load().Reset(idle)
		defer func() { done.Store(true); w.Load().Stop() }()
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		in, err = ss.pipe(server, client, &ss.lr[0])
		errc <- err
	}()
	out, err = ss.pipe(client, server, &ss.lr[1])
	// The direction that saw the timeout or error first closed both
	// connections, so the other reports a closed connection: keep the cause.
	if err2 := <-errc; err == nil || err2 == errIdle || err2 == errSessionTimeout {
		err = err2
	}
	return in, out, err
}

// pipe moves bytes from src to dst until src's EOF, then half-closes dst.
// On an error it closes both connections, which ends the other direction.
// Reads wait at most a quarter of the idle timeout, so that the session's
// idleness (no byte either way, shared by both directions) is checked.
func (ss *session) pipe(dst, src *net.TCPConn, lr *io.LimitedReader) (int64, error) {
	idle := ss.s.opts.IdleTimeout
	var total int64
	for {
		var dl time.Time
		if idle > 0 {
			dl = time.Now().Add(idle / 4)
		}
		if !ss.end.IsZero() && (dl.IsZero() || ss.end.Before(dl)) {
			dl = ss.end
		}
		src.SetReadDeadline(dl)
		lr.R, lr.N = src, chunk
		n, err := dst.ReadFrom(lr) // splice(2) on Linux
		total += n
		if n > 0 {
			ss.lastActive.store(time.Now())
		}
		if err == nil {
			if n < chunk && atUrgentMark(src) {
				// Not the end: Linux's splice stops at a mark of TCP
				// urgent data and returns 0. A read passes the mark.
				var buf [512]byte
				m, rerr := src.Read(buf[:])
				if m > 0 {
					ss.lastActive.store(time.Now())
					w, werr := dst.Write(buf[:m])
					total += int64(w)
					if werr != nil {
						err = werr
					}
				}
				if err == nil && rerr == nil {
					continue
				}
				if err == nil && rerr != io.EOF {
					err = rerr
				}
			}
		}
		if err == nil {
			if n < chunk { // EOF
				// The second direction to end leaves the FIN to the
				// close that follows at once: one system call fewer.
				if ss.eofs.Add(1) == 1 {
					dst.CloseWrite()
				}
				return total, nil
			}
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			now := time.Now()
			if !ss.end.IsZero() && !now.Before(ss.end) {
				err = errSessionTimeout
			} else if ss.idled.Load() || idle > 0 && now.Sub(ss.lastActive.load()) >= idle {
				err = errIdle
			} else {
				continue
			}
		}
		dst.Close()
		src.Close()
		return total, err
	}
}

// finish releases everything the session holds. It runs exactly once.
func (ss *session) finish() {
	s := ss.s
	s.conns.remove(ss)
	ss.client.Close()
	if ss.server != nil {
		ss.server.Close()
	}
	s.srcLimit.release(ss.bucket)
	s.active.Add(-1)
	s.connsWG.Done()
	s.bg.Done()
}

// A connSet tracks open sessions so that Shutdown can close them; it is
// sharded so that connections rarely meet on one lock.
type connSet struct {
	shards [16]connShard
	next   atomic.Uint32
}

type connShard struct {
	mu sync.Mutex
	m  map[*session]struct{}
	_  [40]byte // keep shards' locks on separate cache lines
}

func (cs *connSet) init() {
	for i := range cs.shards {
		cs.shards[i].m = map[*session]struct{}{}
	}
}

func (cs *connSet) add(ss *session) {
	sh := &cs.shards[cs.next.Add(1)%uint32(len(cs.shards))]
	ss.shard = sh
	sh.mu.Lock()
	sh.m[ss] = struct{}{}
	sh.mu.Unlock()
}

func (cs *connSet) remove(ss *session) {
	sh := ss.shard
	sh.mu.Lock()
	delete(sh.m, ss)
	sh.mu.Unlock()
}

// setServer records the session's server connection; false (with c
// closed) if the session was killed meanwhile.
func (cs *connSet) setServer(ss *session, c *net.TCPConn) bool {
	sh := ss.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ss.server = c
	return !ss.killed
}

// arm starts the session's tarpit: after d a timer runs forward in a new
// goroutine. False if the session was killed (the caller goes on).
func (cs *connSet) arm(ss *session, d time.Duration) bool {
	sh := ss.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ss.killed {
		return false
	}
	ss.timer = time.AfterFunc(d, ss.forward)
	return true
}

// closeAll kills every session: closes its connections, and finishes the
// ones still asleep in a tarpit. It returns how many there were.
func (cs *connSet) closeAll(s *Splitter) int {
	var asleep []*session
	n := 0
	for i := range cs.shards {
		sh := &cs.shards[i]
		sh.mu.Lock()
		for ss := range sh.m {
			n++
			ss.killed = true
			ss.client.Close()
			if ss.server != nil {
				ss.server.Close()
			}
			if ss.timer != nil && ss.timer.Stop() {
				asleep = append(asleep, ss)
			}
		}
		sh.mu.Unlock()
	}
	for _, ss := range asleep {
		ss.finish()
	}
	return n
}

// atomicTime is a time shared by a session's two directions.
type atomicTime struct{ ns atomic.Int64 }

func (a *atomicTime) store(t time.Time) { a.ns.Store(t.UnixNano()) }
func (a *atomicTime) load() time.Time   { return time.Unix(0, a.ns.Load()) }
