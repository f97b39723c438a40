package routeros

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
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

// A Router is one RouterOS device reached over the binary API; it
// implements [backend.Applier]. The zero value of every optional field is
// a sensible default.
//
// Apply reads the managed state, computes the changes, and (unless
// DryRun) loads lists, switches rules and removes what is obsolete, with up
// to Window tagged commands in flight on one connection, then reads
// everything back to verify. It is idempotent, safe to re-run after an
// interruption at any point (a partially loaded generation is resumed, not
// reloaded), and never lets a rule reference a list that is being loaded.
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
	// Timeout, if positive, gives every added entry a timeout: RAM-only
	// entries that vanish after a reboot or if syncs stop. Sync more often.
	Timeout time.Duration

	Window      int           // commands in flight; default 256
	RemoveBatch int           // ids per remove command; default 512
	DialTimeout time.Duration // TCP connect and TLS handshake; default 10s
	IOTimeout   time.Duration // longest silence while waiting for the router; default 30s
	NoVerify    bool          // skip the final read-back
	Logger      *slog.Logger  // default slog.Default(); never sees credentials
}

var _ backend.Applier = (*Router)(nil)

func (r *Router) defaults() (Router, error) {
	c := *r
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
	start := time.Now()
	c, err := dial(ctx, dialConfig{cfg.Addr, cfg.User, cfg.Password, cfg.TLS, cfg.DialTimeout, cfg.IOTimeout})
	if err != nil {
		return backend.Report{}, err
	}
	defer c.close()
	s := &syncer{cfg: &cfg, c: c, d: d, progress: opts.Progress, report: backend.Report{DryRun: opts.DryRun}}
	err = s.run(ctx, opts.DryRun)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("routeros: %s: %w", cfg.Addr, ctx.Err())
	} else if err != nil {
		err = fmt.Errorf("routeros: %s: %w", cfg.Addr, err)
	}
	cfg.Logger.Info("routeros sync", "router", cfg.Addr, "dry_run", opts.DryRun,
		"added", s.report.ElementsAdded, "removed", s.report.ElementsRemoved,
		"rules_changed", s.report.RulesChanged, "commands", c.sent,
		"elapsed", time.Since(start).Round(time.Millisecond), "err", err)
	return s.report, err
}
