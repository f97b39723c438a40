package routeros

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/steer"
)

// Mode says how a sync changes the content of a list that rules already
// reference.
type Mode int

const (
	// BlueGreen loads the new content into a new list generation, checks
	// it is complete, repoints the rules in one command per distinct value
	// and then removes the old generation. Traffic sees the old list or
	// the new one, never a mix; a sync costs the size of each changed list.
	BlueGreen Mode = iota
	// Standby is BlueGreen that keeps the replaced generation as a standby
	// and brings it up to date on the next change: atomic and proportional
	// to the change, for twice the router memory.
	Standby
	// InPlace adds the new entries to the referenced list, then removes
	// the old ones: proportional to the change and half the memory of
	// Standby, but not atomic. Each address moves once from its old
	// membership to its new one and is never in neither; an interrupted
	// sync leaves a mix of old and new until it is re-run.
	InPlace
)

func (m Mode) String() string {
	switch m {
	case BlueGreen:
		return "blue-green"
	case Standby:
		return "standby"
	case InPlace:
		return "in-place"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Verify says what Apply trusts and checks besides each command's reply.
type Verify int

const (
	// VerifyCounts (the default) trusts the state the Router's last
	// successful Apply left if the router's counts confirm it: per family,
	// the entries carrying the tag in any list; per managed list, its
	// enabled tagged entries. That detects a list or generation added,
	// removed or emptied (a reboot dropping Timeout entries), entries added,
	// removed or disabled by hand, another sync from elsewhere, a router
	// replaced — whenever a count changes. It cannot detect what leaves
	// every count unchanged: a managed entry's address edited in place, as
	// many entries removed as added in one list, a list restored to the
	// same size. The first Apply of a Router, and any whose counts differ,
	// reads every managed entry instead. After the changes, each changed
	// list has been counted (before any rule used it); the rules are read
	// back, and the totals per family if a whole generation was removed.
	VerifyCounts Verify = iota
	// VerifyFull trusts nothing remembered: it reads every managed entry
	// before and after the changes and fails unless the router matches
	// the plan exactly. It costs two prints of every list; run it now and
	// then (say daily) to catch what the counts cannot.
	VerifyFull
	// VerifyNone reads nothing back after the changes (the count of each
	// loaded list is still checked before any rule uses it, and the next
	// Apply checks the counts before trusting what it remembers).
	VerifyNone
)

func (v Verify) String() string {
	switch v {
	case VerifyCounts:
		return "counts"
	case VerifyFull:
		return "full"
	case VerifyNone:
		return "none"
	}
	return fmt.Sprintf("Verify(%d)", int(v))
}

// A Router is one RouterOS device reached over the binary API; it
// implements [backend.Applier]. The zero value of every optional field is
// a sensible default.
//
// Apply learns the managed state, computes the changes, and (unless
// DryRun) loads lists, switches rules and removes what is obsolete, with up
// to Window tagged commands in flight on one connection, then checks the
// result (see [Verify]). It is idempotent, safe to re-run after an
// interruption at any point (a partially loaded generation is resumed, not
// reloaded), and never lets a rule reference a list that is being loaded.
//
// A Router remembers the state its last successful Apply left: each
// managed list's content (the plan's own immutable set, shared) and the
// id of each entry, 8 bytes per entry. The next Apply confirms it with a
// few count queries instead of reading every entry back, so a small change
// to a large list costs commands and time in proportion to the change. A
// failed or interrupted Apply forgets it; the next one reads the router in
// full. A reboot may renumber the router's ids: the counts include each
// list's newest entry by id, so renumbered ids are not trusted. Apply
// calls on one Router are serialised; a Router must not be copied after
// first use. Use one Router per device: two (or two processes) each
// remember their own idea of it, and a change by one that keeps every
// count is invisible to the other until a full read.
type Router struct {
	// Addr is host or host:port; the port defaults to 8728, or 8729 with TLS.
	Addr     string
	User     string
	Password string // never logged nor included in errors
	// TLS, if not nil, selects API-SSL. Certificates are verified as the
	// config says (RootCAs, ServerName, which defaults to Addr's host).
	TLS *tls.Config

	Names
	Mode Mode
	// Timeout must be zero for now: Apply returns ErrTimeoutUnsupported
	// otherwise. An API sync keeps entries that are already on the router
	// and does not refresh their timeouts, so entries added with one would
	// all expire together, Timeout after the first sync, leaving the rule
	// on an empty list. Script.Timeout, which starts a new generation
	// before the old one expires, is the way to RAM-only entries.
	Timeout time.Duration

	Window      int           // commands in flight; default 256
	RemoveBatch int           // ids per remove command; default 512
	DialTimeout time.Duration // TCP connect and TLS handshake; default 10s
	IOTimeout   time.Duration // longest silence while waiting for the router; default 30s
	Verify      Verify        // what is trusted and read back; default VerifyCounts
	Logger      *slog.Logger  // default slog.Default(); never sees credentials

	mu   sync.Mutex
	memo *memo // what the last successful Apply left; nil if unknown
	read string
}

var _ backend.Applier = (*Router)(nil)

// ErrTimeoutUnsupported is returned by Apply for a Router with a Timeout:
// see [Router.Timeout].
var ErrTimeoutUnsupported = errors.New("routeros: Router.Timeout is not supported: an API sync does not refresh the timeouts of the entries it keeps, so they would expire together; use Script.Timeout or permanent entries")

// config is a Router's settings with the defaults filled in.
type config struct {
	Addr, User, Password string
	TLS                  *tls.Config
	Names
	Mode                   Mode
	Timeout                time.Duration
	Window, RemoveBatch    int
	DialTimeout, IOTimeout time.Duration
	Verify                 Verify
	Logger                 *slog.Logger
}

func (r *Router) defaults() (config, error) {
	c := config{
		Addr: r.Addr, User: r.User, Password: r.Password, TLS: r.TLS, Names: r.Names,
		Mode: r.Mode, Timeout: r.Timeout, Window: r.Window, RemoveBatch: r.RemoveBatch,
		DialTimeout: r.DialTimeout, IOTimeout: r.IOTimeout, Verify: r.Verify, Logger: r.Logger,
	}
	if c.Timeout != 0 {
		return c, ErrTimeoutUnsupported
	}
	var err error
	if c.Names, err = c.Names.withDefaults(); err != nil {
		return c, err
	}
	if c.Window <= 0 {
		c.Window = 256
	}
	if c.RemoveBatch <= 0 {
		c.RemoveBatch = 512
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Mode < BlueGreen || c.Mode > InPlace {
		return c, errorf("unknown mode %v", c.Mode)
	}
	if c.Verify < VerifyCounts || c.Verify > VerifyNone {
		return c, errorf("unknown verify %v", c.Verify)
	}
	return c, nil
}

// Apply makes the router enforce p; see [Router].
func (r *Router) Apply(ctx context.Context, p *steer.Plan, opts backend.ApplyOptions) (backend.Report, error) {
	cfg, err := r.defaults()
	if err != nil {
		return backend.Report{}, err
	}
	d, err := compile(p, cfg.Names)
	if err != nil {
		return backend.Report{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.memo
	r.memo = nil // until this Apply succeeds
	start := time.Now()
	c, err := dial(ctx, dialConfig{cfg.Addr, cfg.User, cfg.Password, cfg.TLS, cfg.DialTimeout, cfg.IOTimeout})
	if err != nil {
		return backend.Report{}, err
	}
	defer c.close()
	s := &syncer{cfg: &cfg, c: c, d: d, progress: opts.Progress, report: backend.Report{DryRun: opts.DryRun}}
	next, err := s.run(ctx, opts.DryRun, m)
	r.read = s.read
	if err == nil {
		r.memo = next
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("routeros: %s: %w", cfg.Addr, ctx.Err())
	} else if err != nil {
		err = fmt.Errorf("routeros: %s: %w", cfg.Addr, err)
	}
	cfg.Logger.Info("routeros sync", "router", cfg.Addr, "dry_run", opts.DryRun,
		"added", s.report.ElementsAdded, "removed", s.report.ElementsRemoved,
		"rules_changed", s.report.RulesChanged, "commands", c.sent, "state", s.read,
		"elapsed", time.Since(start).Round(time.Millisecond), "err", err)
	return s.report, err
}
