package splitter

import (
	"net/netip"
	"slices"

	"github.com/geosteer/geosteer/steer"
)

// A Router decides where a connection from src to dst:port goes, exactly as
// [steer.Plan.Route] does for the plan it was compiled from: Decision.Rule()
// indexes that plan's rules. It must be safe for concurrent use; the
// splitter calls it once per connection (more only on failover) and never
// holds a lock around it. A *steer.Plan is a Router; steer's compiled
// router is the fast one.
type Router interface {
	Route(src, dst netip.Addr, port uint16) steer.Decision
}

// EntryPoints returns the distinct destinations (DstAddr:DstPort) of the
// plan's rules in the order they first appear: the addresses the splitter
// listens on, unless [Options.Listen] maps them elsewhere.
func EntryPoints(p *steer.Plan) []netip.AddrPort {
	var eps []netip.AddrPort
	for _, r := range p.Rules {
		ep := netip.AddrPortFrom(r.DstAddr, r.DstPort)
		if !slices.Contains(eps, ep) {
			eps = append(eps, ep)
		}
	}
	return eps
}
