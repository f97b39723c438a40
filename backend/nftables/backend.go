package nftables

import (
	"log/slog"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/steer"
)

// A Backend renders and applies plans to one nftables table.
//
// The zero Backend works on the table "geosteer" in the caller's network
// namespace. A Backend holds no state between calls: every Apply reads what
// the kernel holds. Apply needs CAP_NET_ADMIN; Render needs nothing. Callers
// must not run two Applies on the same table at once (the second may see
// the first's table half-read), though each transaction is atomic.
type Backend struct {
	// Table is the inet table the backend owns; "" means [DefaultTable].
	Table string
	// NetNS, if not zero, is an open file descriptor of the network
	// namespace to work in (such as /run/netns/NAME); zero is the caller's.
	NetNS int
	// SkipVerify skips reading the table back after a transaction. The
	// kernel still acknowledges every message, so failures are reported;
	// what is skipped is the check that nothing else changed the table.
	// Reading back costs about as much as the apply for large sets: the
	// kernel's interval-set dump is quadratic in the number of elements.
	SkipVerify bool
	// Logger receives progress and timing at debug level; nil discards.
	Logger *slog.Logger
}

var (
	_ backend.Renderer = (*Backend)(nil)
	_ backend.Applier  = (*Backend)(nil)
)

func (b *Backend) table() string {
	if b.Table == "" {
		return DefaultTable
	}
	return b.Table
}

func (b *Backend) log() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// checkPlan validates p and refuses what this backend cannot enforce
// (hash splits: see steer.NFTables).
func checkPlan(p *steer.Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return p.Check(steer.NFTables)
}
