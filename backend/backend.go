// Package backend defines what the enforcement points of a steer.Plan have
// in common, so that callers can drive any of them: rendering the plan as
// text (a script or ruleset to review, or to install by other means), and,
// where the backend can, applying it to a live system and saying what
// changed. The backends are the subpackages routeros, nftables and
// splitter.
package backend

import (
	"context"
	"io"

	"github.com/geosteer/geosteer/steer"
)

// A Renderer writes a plan in the backend's own language, complete and
// ready to load (an nft -f file, a RouterOS .rsc script).
type Renderer interface {
	Render(w io.Writer, p *steer.Plan) error
}

// An Applier makes a live system enforce a plan. Apply must be atomic from
// the point of view of traffic (a failure leaves the previous plan fully in
// force), idempotent (applying the same plan twice changes nothing the
// second time) and must stop cleanly when ctx is cancelled. With DryRun it
// computes and returns the changes without making them.
type Applier interface {
	Apply(ctx context.Context, p *steer.Plan, opts ApplyOptions) (Report, error)
}

// ApplyOptions are the options every Applier understands.
type ApplyOptions struct {
	DryRun bool
	// Progress, if not nil, is called from time to time during long work
	// with the work done and the total, in the backend's unit (elements,
	// commands).
	Progress func(done, total int)
}

// A Report says what an Apply changed, or would change with DryRun.
type Report struct {
	DryRun          bool
	ElementsAdded   int // set elements (prefixes or ranges) added
	ElementsRemoved int
	RulesChanged    int      // rules added, removed, replaced or moved
	Changes         []string // human-readable lines, such as "set english_v4: +1204 -88"
}

// Changed reports whether anything changed (or would).
func (r Report) Changed() bool {
	return r.ElementsAdded+r.ElementsRemoved+r.RulesChanged > 0
}
