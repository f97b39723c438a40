package steer

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// A Plan is a compiled policy in a form every enforcement point can express:
// named address sets and an ordered list of rules, each matching a TCP
// destination (an entry point), optionally a source range, and optionally
// membership (or non-membership) of a source set, and naming one DNAT
// target. The first matching rule wins; a connection no rule matches is not
// steered (it goes wherever it was addressed).
//
// A Plan is immutable once compiled and safe for concurrent use. Backends
// render or apply it; [Plan.Route] is the reference semantics they must all
// reproduce.
//
// Invariants (checked by [Plan.Validate]): set names are unique, non-empty
// and made of [a-z0-9_-]; every rule's SrcSet names a set of the plan or is
// empty; within a rule the destination, the source range and the target are
// of one address family, and the family is the rule's Family; destinations
// have no zone.
type Plan struct {
	Sets  []Set
	Rules []Rule

	// from says what a compiled plan was compiled from, for Explain;
	// nil for a plan built by hand.
	from *origins
}

// A Set is a named source address set of a plan.
type Set struct {
	Name string // [a-z0-9_-]+, unique in the plan; backends derive their names from it
	// Addrs holds the addresses, IPv4 and IPv6; a backend that keeps one
	// set per family splits it with Addrs.IPv4() and Addrs.IPv6().
	Addrs   cidr.Set
	Comment string // why the set exists, for humans; may be empty
}

// A Rule matches a connection and names where to send it.
type Rule struct {
	// Name identifies the rule across compilations (stable while the
	// policy's rule and entry point names are), so that backends can diff
	// and operators can read counters. [a-z0-9_-]+, unique in the plan.
	Name    string
	Comment string

	Family int // 4 or 6

	// Destination: the entry point the connection was addressed to.
	// Protocol is always TCP.
	DstAddr netip.Addr
	DstPort uint16

	// Src, if valid, restricts the rule to sources in this range (the MX
	// split: each part of a split is one contiguous range of the address
	// space, such as 0.0.0.0-127.255.255.255). A backend that cannot match
	// a range splits it into prefixes with Src.Prefixes(), one rule each.
	Src netipx.IPRange

	// SrcSet, if not empty, restricts the rule to sources in the named set,
	// or, with SrcSetNot, to sources not in it.
	SrcSet    string
	SrcSetNot bool

	// SrcHash, if its Mod is not zero, restricts the rule to sources
	// whose hash falls in its range: a hash split, which only some
	// backends can compute (see [Plan.Check]).
	SrcHash HashRange

	// Target is the name of the server (for logs and counters), To the
	// address and port connections are sent to (DNAT).
	Target string
	To     netip.AddrPort
}

// A Decision is the outcome of routing one connection: the plan rule that
// matched, if one did. It is two words, so that Route returns it in
// registers (Go keeps a struct of more than four words in memory, and
// copying one cost as much as a cache-resident IPv6 lookup); the target is
// read from the rule on request.
//
// The zero Decision matches no rule. A matching Decision points into its
// plan's Rules, so Decisions compare equal (==) exactly when they name the
// same rule of the same plan: [Plan.Route] and the plan's [Router] return
// equal Decisions for the same connection.
type Decision struct {
	r *Rule // the plan's Rules[i-1]; nil when none matched
	i int   // index in the plan's Rules + 1; 0 when none matched
}

// decision returns the Decision of rule i of rules.
func decision(rules []Rule, i int) Decision { return Decision{&rules[i], i + 1} }

// Matched reports whether a rule matched.
func (d Decision) Matched() bool { return d.r != nil }

// Rule returns the index of the matching rule in the plan's Rules, or -1
// when none matched.
func (d Decision) Rule() int { return d.i - 1 }

// Target returns the name of the server the connection goes to, or ""
// when no rule matched.
func (d Decision) Target() string {
	if d.r == nil {
		return ""
	}
	return d.r.Target
}

// To returns the address and port the connection is sent to (DNAT), or
// the zero AddrPort when no rule matched.
func (d Decision) To() netip.AddrPort {
	if d.r == nil {
		return netip.AddrPort{}
	}
	return d.r.To
}

// String formats the decision for logs and tests: "rule 2 → b
// 10.0.0.2:25", or "no rule".
func (d Decision) String() string {
	if d.r == nil {
		return "no rule"
	}
	return fmt.Sprintf("rule %d → %s %v", d.Rule(), d.r.Target, d.r.To)
}

// Set returns the named set.
func (p *Plan) Set(name string) (Set, bool) {
	for _, s := range p.Sets {
		if s.Name == name {
			return s, true
		}
	}
	return Set{}, false
}

// Route decides where a TCP connection from src to dst:port goes, rule by
// rule: the reference semantics of the plan. IPv4-mapped IPv6 addresses are
// unmapped first, as a dual-stack listener reports IPv4 peers that way; a
// source and destination of different families then match no rule.
//
// Zones are ignored on both sides. The source's (a link-local peer's
// interface) as sets ignore it; the destination's because a plan's entry
// points have none ([Plan.Validate] rejects them, as the policy file does)
// while a listener on a link-local entry point reports its local address
// with the interface's zone: fe80::1%eth0 is the entry point fe80::1, as
// for a firewall rule on the destination address, which no backend can
// qualify by zone.
// It is deliberately simple; steer's compiled router is the fast form.
func (p *Plan) Route(src, dst netip.Addr, port uint16) Decision {
	src, dst = src.Unmap().WithZone(""), dst.Unmap().WithZone("")
	if !src.IsValid() || src.Is4() != dst.Is4() {
		return Decision{} // no such connection
	}
	for i, r := range p.Rules {
		if r.DstPort != port || r.DstAddr != dst {
			continue
		}
		if r.Src.IsValid() && !r.Src.Contains(src) {
			continue
		}
		if r.SrcSet != "" {
			s, _ := p.Set(r.SrcSet)
			if s.Addrs.Contains(src) == r.SrcSetNot {
				continue
			}
		}
		if r.SrcHash.Mod != 0 && !r.SrcHash.Contains(src) {
			continue
		}
		return decision(p.Rules, i)
	}
	return Decision{}
}

// Validate checks the plan's invariants.
func (p *Plan) Validate() error {
	names := map[string]bool{}
	for _, s := range p.Sets {
		if !validName(s.Name) {
			return fmt.Errorf("steer: plan set name %q: want [a-z0-9_-]+", s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("steer: plan set %q defined twice", s.Name)
		}
		names[s.Name] = true
	}
	rules := map[string]bool{}
	for i, r := range p.Rules {
		where := fmt.Sprintf("steer: plan rule %d (%s)", i, r.Name)
		if !validName(r.Name) || rules[r.Name] {
			return fmt.Errorf("%s: name must be unique and [a-z0-9_-]+", where)
		}
		rules[r.Name] = true
		if r.Family != 4 && r.Family != 6 {
			return fmt.Errorf("%s: family %d", where, r.Family)
		}
		is4 := r.Family == 4
		if !r.DstAddr.IsValid() || r.DstAddr.Is4() != is4 || r.DstAddr.Is4In6() {
			return fmt.Errorf("%s: destination %v is not an IPv%d address", where, r.DstAddr, r.Family)
		}
		if r.DstAddr.Zone() != "" {
			// Route ignores the destination's zone: this rule would match nothing.
			return fmt.Errorf("%s: destination %v has a zone (entry points are matched without one)", where, r.DstAddr)
		}
		if !r.To.IsValid() || r.To.Addr().Is4() != is4 || r.To.Addr().Is4In6() || r.To.Port() == 0 {
			return fmt.Errorf("%s: target %v is not an IPv%d address and port", where, r.To, r.Family)
		}
		if r.Src.IsValid() && r.Src.From().Is4() != is4 {
			return fmt.Errorf("%s: source range %v is not IPv%d", where, r.Src, r.Family)
		}
		if r.SrcSet != "" && !names[r.SrcSet] {
			return fmt.Errorf("%s: unknown set %q", where, r.SrcSet)
		}
		if r.DstPort == 0 {
			return fmt.Errorf("%s: destination port 0", where)
		}
		if h := r.SrcHash; h.Mod != 0 && (h.Lo > h.Hi || h.Hi >= h.Mod) {
			return fmt.Errorf("%s: hash range %d-%d outside 0-%d", where, h.Lo, h.Hi, h.Mod-1)
		}
	}
	return nil
}

// Equal reports whether two plans have the same sets and rules.
func (p *Plan) Equal(q *Plan) bool {
	return slices.EqualFunc(p.Sets, q.Sets, func(a, b Set) bool {
		return a.Name == b.Name && a.Comment == b.Comment && a.Addrs.Equal(b.Addrs)
	}) && slices.Equal(p.Rules, q.Rules)
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
