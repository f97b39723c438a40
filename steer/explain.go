package steer

import (
	"fmt"
	"net/netip"
	"strings"
)

// An Explanation says why a connection goes where it goes.
type Explanation struct {
	Decision Decision
	Rule     Rule   // the matching plan rule; zero when none matched
	From     string // the policy rule it was compiled from, if known

	// Set is the source set that decided: the rule's own, or, for a rule
	// without one, the set of the last earlier rule that let the source
	// pass (the seed's split rules are reached by sources in "english").
	// InSet says whether the source is in it.
	Set   string
	InSet bool
	// Country is the country or continent of the set's group that holds
	// the source, when it is in the set through the country data.
	Country string
	// Origin is the country data's own account of the source, when the
	// data is an [Explainer] and knows the address.
	Origin    Origin
	HasOrigin bool
	// Override is the override that put the source into the set or took
	// it out (OverrideRemoved), if one did.
	Override        *Override
	OverrideRemoved bool
}

// Explain routes a connection as [Plan.Route] does and says why: the rule
// that matched, its set and whether the source is in it, the country
// (and, with an [Explainer], the database network and source) that put it
// there, and the override that applied. A plan built by hand, rather than
// compiled, explains only the rule and the set.
func (p *Plan) Explain(src, dst netip.Addr, port uint16) Explanation {
	src = src.Unmap()
	e := Explanation{Decision: p.Route(src, dst, port)}
	if p.from != nil {
		if ex, ok := p.from.data.(Explainer); ok {
			e.Origin, e.HasOrigin = ex.Origin(src)
		}
	}
	if !e.Decision.Matched() {
		return e
	}
	e.Rule = p.Rules[e.Decision.Rule()]
	// The set that decided: the rule's own, or else that of the last
	// earlier rule for this destination that let the source pass.
	set := e.Rule.SrcSet
	for i := e.Decision.Rule() - 1; set == "" && i >= 0; i-- {
		if r := &p.Rules[i]; r.DstAddr == e.Rule.DstAddr && r.DstPort == port && r.SrcSet != "" {
			set = r.SrcSet
		}
	}
	if set != "" {
		s, _ := p.Set(set)
		e.Set, e.InSet = s.Name, s.Addrs.Contains(src)
	}
	if p.from == nil {
		return e
	}
	e.From = p.from.policy.Rules[p.from.ruleFrom[e.Decision.Rule()]].Name
	gi := p.from.groups[e.Set]
	if gi == nil {
		return e
	}
	// Removals apply after additions, so a removal that holds src decides.
	for _, o := range gi.overrides {
		if o.Add.Contains(src) {
			e.Override = o
		}
	}
	for _, o := range gi.overrides {
		if o.Remove.Contains(src) {
			e.Override, e.OverrideRemoved = o, true
		}
	}
	if e.InSet {
		for i, s := range gi.sets {
			if s.Contains(src) {
				e.Country = gi.countries[i]
				break
			}
		}
	}
	return e
}

// String formats the explanation on one line.
func (e Explanation) String() string {
	var b strings.Builder
	if !e.Decision.Matched() {
		b.WriteString("no rule matched: not steered")
	} else {
		fmt.Fprintf(&b, "rule %s", e.Rule.Name)
		if e.From != "" {
			fmt.Fprintf(&b, " (policy rule %s)", e.From)
		}
		fmt.Fprintf(&b, " → %s %v", e.Decision.Target(), e.Decision.To())
		if e.Rule.Src.IsValid() {
			fmt.Fprintf(&b, "; source in split part %v", e.Rule.Src)
		}
		if e.Rule.SrcHash.Mod != 0 {
			fmt.Fprintf(&b, "; source hash in %d-%d of %d", e.Rule.SrcHash.Lo, e.Rule.SrcHash.Hi, e.Rule.SrcHash.Mod)
		}
		if e.Set != "" {
			if e.InSet {
				fmt.Fprintf(&b, "; source in set %s", e.Set)
			} else {
				fmt.Fprintf(&b, "; source not in set %s", e.Set)
			}
			if e.Country != "" {
				fmt.Fprintf(&b, " through %s", e.Country)
			}
		}
		if o := e.Override; o != nil {
			verb := "added to"
			if e.OverrideRemoved {
				verb = "removed from"
			}
			fmt.Fprintf(&b, "; %s %s by override %q", verb, o.Group, o.Reason)
			if !o.Expires.IsZero() {
				fmt.Fprintf(&b, " (expires %s)", o.Expires.Format("2006-01-02"))
			}
		}
	}
	if e.HasOrigin {
		fmt.Fprintf(&b, "; data: %s", e.Origin.Country)
		if e.Origin.Source != "" {
			fmt.Fprintf(&b, " from %s", e.Origin.Source)
		}
		if pfx, ok := e.Origin.Network.Prefix(); ok {
			fmt.Fprintf(&b, " network %v", pfx)
		} else if e.Origin.Network.IsValid() {
			fmt.Fprintf(&b, " range %v", e.Origin.Network)
		}
	}
	return b.String()
}
