package splitter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/steer"
)

// A Splitter enforces a plan on live connections. It is created running by
// [New] and is safe for concurrent use.
//
// Invariants: cur always holds a complete state (plan, router and the
// per-rule targets and counters) whose entry points all have a listener;
// every open connection is in conns and counted in active and bg.
type Splitter struct {
	opts Options
	log  *slog.Logger

	cur      atomic.Pointer[state]
	srcLimit *sourceLimiter
	conns    connSet

	mu        sync.Mutex // serialises Apply and Shutdown; guards the maps below
	listeners map[netip.AddrPort]*listener
	ruleStats map[string]*ruleStats
	targets   map[netip.AddrPort]*target
	closed    bool
	retired   []chan struct{} // accept loops of listeners a reload closed

	bg      sync.WaitGroup // accept loops, connections, health checks
	connsWG sync.WaitGroup // connections only, for draining

	accepted, reloads             atomic.Uint64
	active                        atomic.Int64
	rejected                      [numRejects]atomic.Uint64
	idleTimeouts, sessionTimeouts atomic.Uint64
	dialer                        net.Dialer

	el *eventLoops // the event-loop engine; nil for the goroutine engine
}

// state is one plan in force: immutable once published.
type state struct {
	plan    *steer.Plan
	router  Router
	rules   []ruleState      // by rule index
	entries []netip.AddrPort // entry points, for failover
}

type ruleState struct {
	stats  *ruleStats
	target *target
	tarpit time.Duration
}

// relaying counts a session of the rule that starts relaying to t (a
// failover when t is not the rule's own target), for both engines.
func (rs *ruleState) relaying(t *target) {
	rs.stats.relayed.Add(1)
	t.conns.Add(1)
	if t != rs.target {
		rs.stats.failovers.Add(1)
	}
}

// A listener accepts the connections of one entry point.
type listener struct {
	entry netip.AddrPort
	addr  netip.AddrPort   // where it listens (the port picked, for port 0)
	ln    *net.TCPListener // goroutine engine
	fd    int              // event-loop engine
	done  chan struct{}    // closed when no connection can come from it any more
}

// New starts a splitter enforcing p: it listens on every entry point of
// the plan (or where opts.Listen maps it) and starts the health checks.
// It fails, with nothing left running, if the plan is invalid or a listener
// cannot be opened.
func New(p *steer.Plan, opts Options) (*Splitter, error) {
	opts = opts.withDefaults()
	if opts.Engine < EngineAuto || opts.Engine > EngineEventLoop {
		return nil, fmt.Errorf("splitter: unknown %v", opts.Engine)
	}
	opts.Engine = opts.Engine.resolve()
	if opts.ProxyProtocol < 0 || opts.ProxyProtocol > 2 {
		return nil, fmt.Errorf("splitter: PROXY protocol version %d: want 0, 1 or 2", opts.ProxyProtocol)
	}
	s := &Splitter{
		opts:      opts,
		log:       opts.Logger,
		srcLimit:  newSourceLimiter(opts.MaxConnsPerSource, opts.SourcePrefix4, opts.SourcePrefix6),
		listeners: map[netip.AddrPort]*listener{},
		ruleStats: map[string]*ruleStats{},
		targets:   map[netip.AddrPort]*target{},
		dialer:    net.Dialer{Timeout: opts.DialTimeout, KeepAlive: opts.keepAlive()},
	}
	s.conns.init()
	if opts.Engine == EngineEventLoop {
		var err error
		if s.el, err = newEventLoops(s); err != nil {
			return nil, err
		}
	}
	if _, err := s.apply(p, false); err != nil {
		if s.el != nil {
			s.el.stop()
			s.bg.Wait()
		}
		return nil, err
	}
	return s, nil
}

// Apply swaps in a new plan (the backend.Applier contract): listeners are
// opened for new entry points and closed for removed ones, then the new
// router is published with one atomic store. Connections in flight finish
// on the plan they started with; entry points in both plans keep their
// listener, so none refuses a connection. On error the previous plan stays
// fully in force. With DryRun it only reports what would change.
func (s *Splitter) Apply(ctx context.Context, p *steer.Plan, opts backend.ApplyOptions) (backend.Report, error) {
	if err := ctx.Err(); err != nil {
		return backend.Report{}, err
	}
	return s.apply(p, opts.DryRun)
}

func (s *Splitter) apply(p *steer.Plan, dryRun bool) (backend.Report, error) {
	if err := p.Validate(); err != nil {
		return backend.Report{}, fmt.Errorf("splitter: %w", err)
	}
	if err := p.Check(steer.Splitter); err != nil {
		return backend.Report{}, fmt.Errorf("splitter: %w", err)
	}
	compile := s.opts.Compile
	if compile == nil {
		compile = func(p *steer.Plan) (Router, error) { return p.Router() }
	}
	router, err := compile(p)
	if err != nil {
		return backend.Report{}, fmt.Errorf("splitter: compiling the plan: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return backend.Report{}, errors.New("splitter: shut down")
	}
	rep := s.diff(p)
	rep.DryRun = dryRun
	if dryRun {
		return rep, nil
	}

	entries := EntryPoints(p)
	var opened []*listener
	for _, ep := range entries {
		if s.listeners[ep] != nil {
			continue
		}
		l, err := s.listen(ep)
		if err != nil {
			for _, l := range opened {
				s.closeListener(l)
				delete(s.listeners, l.entry)
			}
			return backend.Report{}, err
		}
		opened = append(opened, l)
		s.listeners[ep] = l
	}

	st := &state{plan: p, router: router, entries: entries, rules: make([]ruleState, len(p.Rules))}
	live := map[netip.AddrPort]bool{}
	for i, r := range p.Rules {
		rs := s.ruleStats[r.Name]
		if rs == nil {
			rs = &ruleStats{name: r.Name}
			s.ruleStats[r.Name] = rs
		}
		t := s.targets[r.To]
		if t == nil {
			t = &target{name: r.Target, addr: r.To, dialAddr: r.To.String()}
			t.up.Store(true)
			if s.opts.HealthInterval > 0 {
				var ctx context.Context
				ctx, t.stop = context.WithCancel(context.Background())
				s.bg.Add(1)
				go s.healthLoop(ctx, t)
			}
			s.targets[r.To] = t
		}
		live[r.To] = true
		st.rules[i] = ruleState{stats: rs, target: t, tarpit: s.opts.Tarpit[r.Target]}
	}
	s.cur.Store(st)
	s.reloads.Add(1)

	// Retire what the new plan no longer uses: listeners after the swap, so
	// a connection accepted just before still finds a rule; targets' health
	// checks (their counters stay for Stats).
	for ep, l := range s.listeners {
		if !slices.Contains(entries, ep) {
			s.closeListener(l)
			s.retired = append(s.retired, l.done)
			delete(s.listeners, ep)
		}
	}
	for a, t := range s.targets {
		if !live[a] && t.stop != nil {
			t.stop()
			t.stop = nil
		}
	}
	for _, l := range opened {
		if s.el != nil {
			s.el.start(l)
			continue
		}
		s.bg.Add(1)
		go s.acceptLoop(l)
	}
	s.log.Info("splitter: plan in force", "rules", len(p.Rules), "entry_points", len(entries), "changes", len(rep.Changes))
	return rep, nil
}

// diff describes the change from the plan in force to p.
func (s *Splitter) diff(p *steer.Plan) backend.Report {
	var rep backend.Report
	var old []steer.Rule
	if st := s.cur.Load(); st != nil {
		old = st.plan.Rules
	}
	byName := map[string]steer.Rule{}
	for _, r := range old {
		byName[r.Name] = r
	}
	for i, r := range p.Rules {
		o, ok := byName[r.Name]
		switch {
		case !ok:
			rep.Changes = append(rep.Changes, "rule "+r.Name+": added")
		case o != r:
			rep.Changes = append(rep.Changes, "rule "+r.Name+": changed")
		case i >= len(old) || old[i].Name != r.Name:
			rep.Changes = append(rep.Changes, "rule "+r.Name+": moved")
		default:
			delete(byName, r.Name)
			continue
		}
		rep.RulesChanged++
		delete(byName, r.Name)
	}
	for _, r := range old {
		if _, ok := byName[r.Name]; ok {
			rep.Changes = append(rep.Changes, "rule "+r.Name+": removed")
			rep.RulesChanged++
		}
	}
	var oldSets []steer.Set
	if st := s.cur.Load(); st != nil {
		oldSets = st.plan.Sets
	}
	for _, set := range p.Sets {
		i := slices.IndexFunc(oldSets, func(o steer.Set) bool { return o.Name == set.Name })
		if i < 0 {
			rep.ElementsAdded += set.Addrs.NumRanges()
			rep.Changes = append(rep.Changes, fmt.Sprintf("set %s: added, %d ranges", set.Name, set.Addrs.NumRanges()))
			continue
		}
		o := oldSets[i].Addrs
		add, rem := set.Addrs.Difference(o).NumRanges(), o.Difference(set.Addrs).NumRanges()
		if add+rem > 0 {
			rep.ElementsAdded += add
			rep.ElementsRemoved += rem
			rep.Changes = append(rep.Changes, fmt.Sprintf("set %s: +%d -%d ranges", set.Name, add, rem))
		}
	}
	for _, o := range oldSets {
		if !slices.ContainsFunc(p.Sets, func(n steer.Set) bool { return n.Name == o.Name }) {
			rep.ElementsRemoved += o.Addrs.NumRanges()
			rep.Changes = append(rep.Changes, "set "+o.Name+": removed")
		}
	}
	return rep
}

func (s *Splitter) listen(ep netip.AddrPort) (*listener, error) {
	local := ep
	if o, ok := s.opts.Listen[ep]; ok {
		local = o
	}
	if s.el != nil {
		return s.el.listen(ep, local)
	}
	network := "tcp4"
	if local.Addr().Is6() && !local.Addr().Is4In6() {
		network = "tcp6"
	}
	lc := net.ListenConfig{KeepAlive: s.opts.keepAlive()}
	ln, err := lc.Listen(context.Background(), network, local.String())
	if err != nil {
		return nil, fmt.Errorf("splitter: entry point %v: %w", ep, err)
	}
	tl := ln.(*net.TCPListener)
	return &listener{entry: ep, addr: tl.Addr().(*net.TCPAddr).AddrPort(), ln: tl, fd: -1, done: make(chan struct{})}, nil
}

// closeListener closes l; its done channel is closed once nothing accepts
// on it any more.
func (s *Splitter) closeListener(l *listener) {
	if s.el != nil {
		s.el.closeListener(l)
		return
	}
	l.ln.Close()
}

// ListenAddr returns the local address the entry point is listened on
// (useful with a port 0 override), and false if it is not an entry point
// of the plan in force.
func (s *Splitter) ListenAddr(entry netip.AddrPort) (netip.AddrPort, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listeners[entry]
	if l == nil {
		return netip.AddrPort{}, false
	}
	return l.addr, true
}

// acceptLoop accepts until the listener is closed, backing off on errors
// (such as running out of file descriptors) from 5ms up to 1s.
func (s *Splitter) acceptLoop(l *listener) {
	defer s.bg.Done()
	defer close(l.done)
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("splitter: accept", "entry", l.entry, "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.accepted.Add(1)
		s.active.Add(1)
		s.bg.Add(1)
		s.connsWG.Add(1)
		go s.serve(c, l.entry)
	}
}

// Shutdown stops accepting, then waits for the connections in flight to
// finish (tarpitted ones included) until ctx ends; those still open then
// are closed, and Shutdown returns ctx's error. Health checks stop. The
// splitter cannot be restarted.
func (s *Splitter) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	loops := s.retired
	if !s.closed {
		s.closed = true
		for ep, l := range s.listeners {
			s.closeListener(l)
			loops = append(loops, l.done)
			delete(s.listeners, ep)
		}
		for _, t := range s.targets {
			if t.stop != nil {
				t.stop()
				t.stop = nil
			}
		}
	}
	s.mu.Unlock()
	// No connection may be added once we wait for them to drain.
	for _, done := range loops {
		<-done
	}

	drained := make(chan struct{})
	go func() { s.connsWG.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	default:
		select {
		case <-drained:
		case <-ctx.Done():
			err = ctx.Err()
			var n int
			if s.el != nil {
				n = s.el.closeAll()
			} else {
				n = s.conns.closeAll(s)
			}
			if n > 0 {
				s.log.Warn("splitter: shutdown deadline, closing connections", "open", n)
			}
			<-drained
		}
	}
	if s.el != nil {
		s.el.stop()
	}
	s.bg.Wait()
	return err
}

// Close shuts down at once: like Shutdown with an expired deadline.
func (s *Splitter) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}

// admit applies the per-source limit to a connection from src to entry and
// decides it, counting it on its rule; both engines admit through it. The
// bucket is to be released when the connection ends, whatever why is
// (-1, nothing to release, when the limit refused it).
func (s *Splitter) admit(src netip.Addr, entry netip.AddrPort) (bucket int, st *state, d steer.Decision, why rejectReason) {
	bucket, ok := s.srcLimit.acquire(src)
	if !ok {
		return bucket, nil, steer.Decision{}, rejectPerSource
	}
	if st, d = s.decide(src, entry); !d.Matched() {
		return bucket, nil, d, rejectNoRoute
	}
	st.rules[d.Rule()].stats.conns.Add(1)
	return bucket, st, d, admitted
}
