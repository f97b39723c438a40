package splitter

import (
	"log/slog"
	"net/netip"
	"slices"
)

// A failover is one session's search for a target, in the order a sender
// retrying its MXs would go: the rule's target (the primary) if it is up;
// then the same source's targets on the plan's other entry points of the
// same port and family, in plan order, each distinct one once, if up;
// then the primary if it was down when the search began (a health check
// may lag a recovery); then none. Both engines use it: the goroutine
// engine dials each in turn, the event loop one per connect it waits for.
//
// Start a search with init; next returns the targets one by one, nil when
// none is left.
type failover struct {
	st    *state
	src   netip.AddrPort
	entry netip.AddrPort
	tried []*target // tried[0] is the primary
	buf   [4]*target
	step  int // 0: the primary; 1: other entry points; 2: the primary if it was down; 3: done
	ci    int // the next index in st.entries
	// primaryUp is whether the primary was up when the search began: a
	// primary that was up was dialled first, so it is not dialled again
	// as the last resort after that dial marked it down.
	primaryUp bool
}

func (f *failover) init(st *state, src, entry netip.AddrPort, primary *target) {
	f.st, f.src, f.entry = st, src, entry
	f.tried = append(f.buf[:0], primary)
	f.step, f.ci, f.primaryUp = 0, 0, false
}

// stop ends the search: next returns nil. For a local failure (out of
// descriptors or memory), which every other target would meet alike.
func (f *failover) stop() { f.step = 3 }

// next returns the next target to try, or nil.
func (f *failover) next(log *slog.Logger) *target {
	primary := f.tried[0]
	switch f.step {
	case 0:
		f.step = 1
		if f.primaryUp = primary.up.Load(); f.primaryUp {
			return primary
		}
		fallthrough
	case 1:
		for f.ci < len(f.st.entries) {
			ep := f.st.entries[f.ci]
			f.ci++
			if ep == f.entry || ep.Port() != f.entry.Port() || ep.Addr().Is4() != f.entry.Addr().Is4() {
				continue
			}
			d := f.st.router.Route(f.src.Addr(), ep.Addr(), ep.Port())
			if !d.Matched() {
				continue
			}
			t := f.st.rules[d.Rule()].target
			if slices.Contains(f.tried, t) {
				continue
			}
			f.tried = append(f.tried, t)
			if !t.up.Load() {
				continue
			}
			log.Info("splitter: failover", "src", f.src, "entry", f.entry, "from", primary.name, "to", t.name, "via", ep)
			return t
		}
		f.step = 2
		fallthrough
	case 2:
		f.step = 3
		if !f.primaryUp {
			return primary
		}
	}
	return nil
}
