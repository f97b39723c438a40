package routerostest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a simulated router. The zero value is a usable default.
type Options struct {
	// Users maps user names to passwords; nil means {"admin": ""}.
	Users map[string]string

	// Latency is the round-trip delay added to every reply: a reply is
	// written no earlier than Latency after its command was fully read.
	// Replies are queued with their due times and written by a separate
	// writer, so pipelined commands overlap like on a real link: N tagged
	// commands sent back to back finish in about Latency + N*CommandCost,
	// not N*Latency.
	Latency time.Duration

	// CommandCost is router CPU time per command. Commands from all
	// connections run one at a time (one router CPU), each holding the CPU
	// for CommandCost. Durations below the OS timer resolution round up.
	CommandCost time.Duration

	// EmptyReplies enables RouterOS 7.18+ behaviour: a print (or getall)
	// that matches nothing answers "!empty" before "!done".
	EmptyReplies bool

	// RemoveAllOrNothing makes a comma-id remove with a missing id remove
	// nothing. Otherwise (the default) ids are removed in the order given
	// until the first missing one, which traps "no such item".
	// unconfirmed: which of the two real RouterOS does.
	RemoveAllOrNothing bool

	// MaxSessions bounds concurrent API connections (RouterOS's
	// max-sessions, default 20). A connection over the limit is closed
	// right after accept. unconfirmed: whether RouterOS sends a reason.
	MaxSessions int

	// TLSConfig, if set, makes the server speak API-SSL.
	TLSConfig *tls.Config

	// Fault, if set, is called for every non-empty sentence before it is
	// handled and may inject a failure (see Fault).
	Fault func(FaultContext) Fault

	// DNS is the fixed resolution table for DNS-name address-list entries:
	// name → addresses. Names not in it resolve to nothing.
	DNS map[string][]netip.Addr

	// Version is shown by /system/resource/print; default "7.18.2 (stable)".
	Version string
}

// FaultAction selects an injected failure.
type FaultAction int

const (
	// FaultNone handles the command normally.
	FaultNone FaultAction = iota
	// FaultDisconnect closes the TCP connection without replying: an
	// abrupt loss of the router or the link.
	FaultDisconnect
	// FaultFatal sends "!fatal <Reason>" and closes, as RouterOS does when
	// it ends a session.
	FaultFatal
	// FaultStall stops reading from the connection for Delay before the
	// command is handled: a busy router that reads slowly.
	FaultStall
	// FaultHang never answers the command; /cancel or a close ends it.
	FaultHang
)

// Fault is what a Fault hook returns.
type Fault struct {
	Action FaultAction
	Delay  time.Duration // FaultStall
	Reason string        // FaultFatal; default "session terminated"
}

// FaultContext tells a Fault hook which command is about to run.
type FaultContext struct {
	Conn    int   // connection number, from 1 in accept order
	N       int   // command number on this connection, from 1
	Total   int64 // command number on the server, from 1
	Command Command
}

// Command is one parsed API sentence.
type Command struct {
	Word   string   // the command word, e.g. "/ip/firewall/nat/add"
	Tag    string   // the .tag value
	Tagged bool     // whether a .tag word was sent
	Args   []Arg    // =key=value words in order (including =.id= and =.proplist=)
	Query  []string // query words without the leading '?', in order
}

// Arg is one =key=value word.
type Arg struct{ Key, Value string }

// Arg returns the value of the last argument named key.
func (c *Command) Arg(key string) (string, bool) {
	for i := len(c.Args) - 1; i >= 0; i-- {
		if c.Args[i].Key == key {
			return c.Args[i].Value, true
		}
	}
	return "", false
}

// parseCommand splits words into a Command. "=k=v" splits on the first '='
// after the key; "=k" has an empty value. Words of no known form are ignored.
func parseCommand(words []string) Command {
	c := Command{Word: words[0]}
	for _, w := range words[1:] {
		switch {
		case strings.HasPrefix(w, ".tag="):
			c.Tag, c.Tagged = w[5:], true
		case strings.HasPrefix(w, "="):
			k, v, _ := strings.Cut(w[1:], "=")
			c.Args = append(c.Args, Arg{k, v})
		case strings.HasPrefix(w, "?"):
			c.Query = append(c.Query, w[1:])
		}
	}
	return c
}

// Stats counts what the server received and sent.
type Stats struct {
	Connections int64            // accepted connections
	Rejected    int64            // connections closed for MaxSessions
	Sentences   int64            // sentences read, including empty ones
	Commands    int64            // non-empty sentences
	BytesIn     int64            // bytes read from clients
	BytesOut    int64            // bytes written to clients
	Traps       int64            // !trap sentences sent
	Fatals      int64            // !fatal sentences sent
	ByCommand   map[string]int64 // command word → count
}

// family holds the menus of /ip or /ipv6.
type family struct {
	addr *addrMenu
	nat  *natMenu
}

// Server is a simulated RouterOS router speaking the binary API on
// 127.0.0.1. All methods are safe for concurrent use.
type Server struct {
	opts  Options
	ln    net.Listener
	start time.Time

	// mu is the router CPU: it guards all configuration state and is held
	// for the whole execution of each command.
	mu        sync.Mutex
	fams      [2]family // 0: /ip, 1: /ipv6
	listeners map[string]map[*listener]bool

	connMu sync.Mutex
	conns  map[*conn]bool
	nconn  int
	closed bool

	wg   sync.WaitGroup
	done chan struct{}

	statMu sync.Mutex
	stats  Stats
	total  atomic.Int64
}

// NewServer starts a simulated router listening on 127.0.0.1:0.
func NewServer(opts Options) (*Server, error) {
	if opts.Users == nil {
		opts.Users = map[string]string{"admin": ""}
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 20
	}
	if opts.Version == "" {
		opts.Version = "7.18.2 (stable)"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.TLSConfig != nil {
		ln = tls.NewListener(ln, opts.TLSConfig)
	}
	s := &Server{
		opts:      opts,
		ln:        ln,
		start:     time.Now(),
		listeners: map[string]map[*listener]bool{},
		conns:     map[*conn]bool{},
		done:      make(chan struct{}),
		stats:     Stats{ByCommand: map[string]int64{}},
	}
	s.fams[0] = family{newAddrMenu(false), newNATMenu(false)}
	s.fams[1] = family{newAddrMenu(true), newNATMenu(true)}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the listener, closes every connection and waits for the
// server's goroutines to finish.
func (s *Server) Close() error {
	s.connMu.Lock()
	if s.closed {
		s.connMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	err := s.ln.Close()
	for c := range s.conns {
		c.nc.Close()
	}
	s.connMu.Unlock()
	s.wg.Wait()
	return err
}

// DropConnections abruptly closes every open API connection (no !fatal),
// as a router reboot or a link loss would. The server keeps listening.
func (s *Server) DropConnections() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

// Restart simulates a reboot: every connection drops, dynamic address-list
// entries (timeouts, DNS children) vanish, and the remaining entries get
// new ids, *1 upwards in insertion order per menu, so an id a client
// remembers may now name another entry.
func (s *Server) Restart() {
	s.DropConnections()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.fams {
		s.fams[i].addr.restart()
	}
}

// Sessions returns the number of open API connections.
func (s *Server) Sessions() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return len(s.conns)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	st := s.stats
	st.ByCommand = make(map[string]int64, len(s.stats.ByCommand))
	for k, v := range s.stats.ByCommand {
		st.ByCommand[k] = v
	}
	return st
}

func (s *Server) count(f func(*Stats)) {
	s.statMu.Lock()
	f(&s.stats)
	s.statMu.Unlock()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.connMu.Lock()
		if s.closed || len(s.conns) >= s.opts.MaxSessions {
			s.connMu.Unlock()
			nc.Close()
			s.count(func(st *Stats) { st.Rejected++ })
			continue
		}
		s.startConn(nc)
		s.connMu.Unlock()
	}
}

// startConn serves an accepted connection; s.connMu must be held.
func (s *Server) startConn(nc net.Conn) *conn {
	s.nconn++
	c := newConn(s, nc, s.nconn)
	s.conns[c] = true
	s.count(func(st *Stats) { st.Connections++ })
	s.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// countingReader counts bytes read from a connection.
type countingReader struct {
	r io.Reader
	s *Server
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 {
		cr.s.count(func(st *Stats) { st.BytesIn += int64(n) })
	}
	return n, err
}

// outMsg is one batch of reply bytes due at a given time.
type outMsg struct {
	due   time.Time
	data  []byte
	close bool // close the connection after writing
}

// running is a command that has not finished: a listen or a hung command.
type running struct {
	cmd Command
	l   *listener // nil for FaultHang
}

// conn is one API session.
type conn struct {
	s  *Server
	nc net.Conn
	id int
	br *bufio.Reader

	// Reader-goroutine state.
	loggedIn  bool
	challenge string
	n         int

	// The writer queue: an unbounded FIFO so that listeners notified while
	// the router CPU is held never block on a slow client.
	qmu     sync.Mutex
	qcond   *sync.Cond
	queue   []outMsg
	qclosed bool

	// running commands by tag; guarded by s.mu.
	running map[string]*running

	readDone chan struct{} // closed when the reader has ended
}

func newConn(s *Server, nc net.Conn, id int) *conn {
	c := &conn{s: s, nc: nc, id: id, running: map[string]*running{}, readDone: make(chan struct{})}
	c.br = bufio.NewReaderSize(countingReader{nc, s}, 64<<10)
	c.qcond = sync.NewCond(&c.qmu)
	return c
}

// enqueue schedules reply bytes; due is when they may be written.
func (c *conn) enqueue(m outMsg) {
	c.qmu.Lock()
	if !c.qclosed {
		c.queue = append(c.queue, m)
		c.qcond.Signal()
	}
	c.qmu.Unlock()
}

// writeLoop writes queued replies when they are due, coalescing every
// reply already due into one write.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	var buf []byte
	for {
		c.qmu.Lock()
		for len(c.queue) == 0 && !c.qclosed {
			c.qcond.Wait()
		}
		if len(c.queue) == 0 {
			c.qmu.Unlock()
			c.nc.Close()
			return
		}
		head := c.queue[0]
		c.qmu.Unlock()
		if d := time.Until(head.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.s.done:
				t.Stop()
			}
		}
		now := time.Now()
		c.qmu.Lock()
		buf = buf[:0]
		closeAfter := false
		i := 0
		for ; i < len(c.queue) && !c.queue[i].due.After(now) && !closeAfter; i++ {
			buf = append(buf, c.queue[i].data...)
			closeAfter = c.queue[i].close
		}
		if i == 0 { // woken by Close before the head was due
			i, buf, closeAfter = 1, append(buf, head.data...), head.close
		}
		c.queue = c.queue[i:]
		c.qmu.Unlock()
		n, err := c.nc.Write(buf)
		c.s.count(func(st *Stats) { st.BytesOut += int64(n) })
		if err != nil || closeAfter {
			c.nc.Close()
			c.stopQueue()
			return
		}
	}
}

func (c *conn) stopQueue() {
	c.qmu.Lock()
	c.qclosed = true
	c.queue = nil
	c.qcond.Broadcast()
	c.qmu.Unlock()
}

// readLoop reads sentences and runs them in order.
func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer close(c.readDone)
	defer c.shutdown()
	for {
		words, err := readSentence(c.br)
		if err != nil {
			if errors.Is(err, errControlByte) || errors.Is(err, errWordTooLong) {
				// unconfirmed: the reason word RouterOS sends here.
				c.fatal(time.Now(), "malformed sentence")
			}
			return
		}
		c.s.count(func(st *Stats) {
			st.Sentences++
			if len(words) > 0 {
				st.Commands++
				st.ByCommand[words[0]]++
			}
		})
		if len(words) == 0 {
			continue // RouterOS ignores empty sentences
		}
		recv := time.Now()
		cmd := parseCommand(words)
		c.n++
		total := c.s.total.Add(1)
		if hook := c.s.opts.Fault; hook != nil {
			f := hook(FaultContext{Conn: c.id, N: c.n, Total: total, Command: cmd})
			switch f.Action {
			case FaultDisconnect:
				c.nc.Close()
				return
			case FaultFatal:
				reason := f.Reason
				if reason == "" {
					reason = "session terminated"
				}
				c.fatal(recv, reason)
				return
			case FaultStall:
				t := time.NewTimer(f.Delay)
				select {
				case <-t.C:
				case <-c.s.done:
					t.Stop()
					return
				}
				recv = time.Now()
			case FaultHang:
				c.s.mu.Lock()
				c.running[cmd.Tag] = &running{cmd: cmd}
				c.s.mu.Unlock()
				continue
			}
		}
		if !c.handle(cmd, recv) {
			return
		}
	}
}

// shutdown runs when the reader ends: the session is gone.
func (c *conn) shutdown() {
	c.s.mu.Lock()
	for _, r := range c.running {
		if r.l != nil {
			c.s.removeListener(r.l)
		}
	}
	c.running = map[string]*running{}
	c.s.mu.Unlock()
	// Let the writer flush what is queued (a !fatal in particular); it
	// closes the connection itself on a close message or a write error.
	c.qmu.Lock()
	c.qclosed = true
	c.qcond.Broadcast()
	c.qmu.Unlock()
	c.s.connMu.Lock()
	delete(c.s.conns, c)
	c.s.connMu.Unlock()
	// Bound the final flush so a client that never reads cannot pin the
	// writer (and Close) forever.
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
}

// fatal queues "!fatal reason" and closes the connection after it.
func (c *conn) fatal(recv time.Time, reason string) {
	c.s.count(func(st *Stats) { st.Fatals++ })
	c.enqueue(outMsg{due: recv.Add(c.s.opts.Latency), data: appendSentence(nil, "!fatal", reason), close: true})
}

// handle runs one command; it returns false when the session ends.
func (c *conn) handle(cmd Command, recv time.Time) bool {
	s := c.s
	if !c.loggedIn && cmd.Word != "/login" && cmd.Word != "/quit" {
		// Reported from a real router: commands before login end the
		// session with "!fatal not logged in". unconfirmed on RouterOS 7.
		c.fatal(recv, "not logged in")
		return false
	}
	s.mu.Lock()
	if s.opts.CommandCost > 0 {
		time.Sleep(s.opts.CommandCost)
	}
	r := &reply{tag: cmd.Tag, tagged: cmd.Tagged}
	s.dispatch(c, &cmd, r)
	s.mu.Unlock()
	if r.traps > 0 {
		s.count(func(st *Stats) { st.Traps += int64(r.traps) })
	}
	if r.fatal != "" {
		c.fatal(recv, r.fatal)
		return false
	}
	c.enqueue(outMsg{due: recv.Add(s.opts.Latency), data: r.buf})
	return true
}

// reply accumulates the encoded reply sentences of one command.
type reply struct {
	tag    string
	tagged bool
	buf    []byte
	traps  int
	fatal  string
}

func (r *reply) sentence(word string, props ...prop) {
	r.buf = appendWord(r.buf, word)
	for _, p := range props {
		r.buf = appendWord(r.buf, "="+p.k+"="+p.v)
	}
	if r.tagged {
		r.buf = appendWord(r.buf, ".tag="+r.tag)
	}
	r.buf = append(r.buf, 0)
}

func (r *reply) re(it item) { r.sentence("!re", it...) }

func (r *reply) done(props ...prop) { r.sentence("!done", props...) }

func (r *reply) empty() { r.sentence("!empty") }

// trap appends "!trap"; category < 0 omits the category word.
func (r *reply) trap(category int, msg string) {
	r.traps++
	if category >= 0 {
		r.sentence("!trap", prop{"category", fmt.Sprint(category)}, prop{"message", msg})
		return
	}
	r.sentence("!trap", prop{"message", msg})
}

// trapDone is the common one-trap failure: "!trap" then "!done".
func (r *reply) trapDone(category int, msg string) {
	r.trap(category, msg)
	r.done()
}

// Entry is an address-list entry as the simulator holds it.
type Entry struct {
	ID           string // "*HEX"; ignored by Seed
	List         string
	Address      string // normalised as print shows it
	Comment      string
	Timeout      string // non-empty makes the entry dynamic
	Disabled     bool
	Dynamic      bool
	CreationTime string // ignored by Seed
	Parent       string // for DNS children: the id of the DNS-name entry
}

// NATRule is a NAT rule as the simulator holds it.
type NATRule struct {
	ID       string
	Disabled bool
	Props    map[string]string // chain, action, to-addresses, ... as stored
}

func (s *Server) fam(family string) (*family, error) {
	switch family {
	case "ip":
		return &s.fams[0], nil
	case "ipv6":
		return &s.fams[1], nil
	}
	return nil, fmt.Errorf("routerostest: family %q: want \"ip\" or \"ipv6\"", family)
}

// Seed adds entries to an address list of family "ip" or "ipv6" without
// the duplicate check, as entries imported long ago may be. Addresses are
// validated and normalised like an API add; DNS names get their dynamic
// children. It returns the new ids.
func (s *Server) Seed(family string, entries ...Entry) ([]string, error) {
	f, err := s.fam(family)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := creationTime(time.Now())
	var ids []string
	for _, in := range entries {
		pa, msg := parseListAddress(in.Address, f.addr.v6)
		if msg != "" {
			return ids, fmt.Errorf("routerostest: seed %q: %s", in.Address, msg)
		}
		e := &addrEntry{list: in.List, addr: pa, comment: in.Comment, hasCmt: in.Comment != "",
			timeout: in.Timeout, disabled: in.Disabled, dynamic: in.Dynamic || in.Timeout != "", created: now}
		f.addr.link(e)
		if pa.dns {
			f.addr.resolveChildren(e, s.opts.DNS, now)
		}
		ids = append(ids, fmtID(e.id))
	}
	return ids, nil
}

// SeedNAT appends a NAT rule without validation (a router may hold rules
// the API would refuse today) and returns its id. "disabled" in props is
// honoured.
func (s *Server) SeedNAT(family string, props map[string]string) (string, error) {
	f, err := s.fam(family)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &natRule{id: f.nat.nextID, props: map[string]string{}}
	f.nat.nextID++
	for k, v := range props {
		if k == "disabled" {
			r.disabled, _ = parseBool(v)
			continue
		}
		r.props[k] = v
	}
	f.nat.rules = append(f.nat.rules, r)
	return fmtID(r.id), nil
}

// AddressList returns the entries of list (all lists if list is "") in
// insertion order, including dynamic ones. It panics on a bad family.
func (s *Server) AddressList(family, list string) []Entry {
	f, err := s.fam(family)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for e := f.addr.head; e != nil; e = e.next {
		if list != "" && e.list != list {
			continue
		}
		out = append(out, e.entry())
	}
	return out
}

// AddressListLen returns the number of entries in all lists of a family.
func (s *Server) AddressListLen(family string) int {
	f, err := s.fam(family)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.addr.len()
}

func (e *addrEntry) entry() Entry {
	out := Entry{ID: fmtID(e.id), List: e.list, Address: e.addr.shown, Comment: e.comment,
		Timeout: e.timeout, Disabled: e.disabled, Dynamic: e.dynamic, CreationTime: e.created}
	if e.parent != 0 {
		out.Parent = fmtID(e.parent)
	}
	return out
}

// NATRules returns the NAT rules of a family in their global order.
func (s *Server) NATRules(family string) []NATRule {
	f, err := s.fam(family)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NATRule, 0, len(f.nat.rules))
	for _, r := range f.nat.rules {
		p := make(map[string]string, len(r.props))
		for k, v := range r.props {
			p[k] = v
		}
		out = append(out, NATRule{ID: fmtID(r.id), Disabled: r.disabled, Props: p})
	}
	return out
}

// Route evaluates the router's own dstnat rules for a TCP connection from
// src to dst:port, top to bottom, first match wins, with the current address
// lists. The family is src's. It returns the translated destination, the id
// of the rule that decided, and ok=false if no rule matched.
//
// Matchers evaluated: chain=dstnat, disabled, protocol (tcp or 6, with '!'),
// src-address and dst-address (address, prefix such as 0.0.0.0/1, range,
// '!'), dst-port (list, ranges, '!'), src-address-list and dst-address-list
// ('!name' negates; disabled entries and DNS-name parents do not match, DNS
// children do). Interface matchers and other conditions a packet here lacks
// are ignored. Rules with src-port or per-connection-classifier never match:
// the source port is not given and the PCC hash is not published.
// Actions: dst-nat and netmap translate to the first address of
// to-addresses and the first port of to-ports (each kept if empty); log,
// passthrough, jump, return and add-*-to-address-list fall through; any other
// action ends evaluation with the destination unchanged.
func (s *Server) Route(src, dst netip.Addr, port uint16) (toAddr netip.Addr, toPort uint16, ruleID string, ok bool) {
	f := &s.fams[0]
	if src.Is6() && !src.Is4In6() {
		f = &s.fams[1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.nat.route(f.addr, src.Unmap(), dst.Unmap(), port)
}
