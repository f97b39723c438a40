package steer

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// CountryData is what Compile needs of a country database: the addresses
// of a country or a continent, and the addresses it knows nothing about.
// The methods are named and typed as geo.DB's, so a *geo.DB is a
// CountryData as it is; tests use a small in-memory implementation.
//
// Country and Continent return an error for a code the data does not know
// or has no networks for; Compile reports it against the policy field.
type CountryData interface {
	Country(cc string) (cidr.Set, error)
	Continent(code string) (cidr.Set, error)
	Unknown() cidr.Set
}

// An Origin says where the country data's answer for an address came from.
type Origin struct {
	Country string
	Source  string         // the database or list, such as a file name
	Network netipx.IPRange // the data's network holding the address
	Detail  string         // the data's own full account, if any
}

// An Explainer is country data that can say where its answer for an
// address came from. [Explain] uses it when the data given to Compile has
// it. (geo.DB's Explain returns a geo.Provenance; an adapter to Origin is
// three lines.)
type Explainer interface {
	Origin(addr netip.Addr) (Origin, bool)
}

// Options tune Compile. The zero Options are usable.
type Options struct {
	// Previous is the plan in force, for the MaxShrink gate; nil skips it.
	Previous *Plan
	// Backends are the enforcement points the plan is for. Hash splits
	// compile only when every one of them can compute the hash, so a
	// policy with a hash split needs them named.
	Backends []Capabilities
	// Now is the time overrides expire against; zero means time.Now().
	Now time.Time
	// Logger receives warnings (overrides expiring within a fortnight,
	// unused groups) and each set's entry counts; nil discards them.
	Logger *slog.Logger
	// Context, if not nil, cancels a long compilation.
	Context context.Context
}

// expiryWarning is how far ahead an expiring override is announced.
const expiryWarning = 14 * 24 * time.Hour

// origins is what a compiled plan keeps for Explain.
type origins struct {
	policy   *Policy
	data     CountryData
	groups   map[string]*groupInfo
	ruleFrom []int // plan rule index → policy rule index
}

type groupInfo struct {
	g         *Group
	countries []string
	sets      []cidr.Set // per country, then per continent, in order
	overrides []*Override
	set       cidr.Set // the compiled addresses
	missing   bool     // geo-derived and compiled without data
}

// Compile validates a policy against country data and compiles it into a
// plan. data may be nil only if no group is geo-derived or the policy's
// Safety.OnMissingData says what to do without it.
//
// Each group a rule uses becomes a plan set of the same name holding its
// countries, continents, literal addresses and lists, plus the addresses
// its overrides add, minus those they remove. Each rule becomes, for each
// of its entry points, address families and ports, one plan rule named
// "<rule>-<entry point>-v<family>-<port>", or for a split one per part,
// suffixed "-<part>":
//
//   - A range split divides the family's space into contiguous ranges by
//     the weights (halves by default): IPv4 over all of it, IPv6 over
//     2000::/3 (global unicast), the first and last parts stretching to
//     the ends of the space. On the i-th entry point of the rule, part j
//     goes to pool target (j+i) mod N: the MX rotation, so that a sender
//     retrying on the next MX reaches a different server.
//   - A hash split divides the hash values 0..sum(weights)-1 the same way.
//
// IPv4 rules are made for entry points with an IPv4 address, IPv6 rules
// for those with an IPv6 address; an IPv6 entry point needs every target
// of its rules to have an IPv6 address.
//
// Compile reports every problem at once (see [PolicyError]): unknown
// targets, entry points, groups and countries, empty groups, expired
// overrides, overrides that add and remove the same addresses, rules that
// earlier rules shadow wholly, splits that break MX failover (some source
// reaching one server on every entry point), safety gates (MinEntries,
// MaxShrink), and hash splits a backend cannot enforce.
func Compile(p *Policy, data CountryData, opts *Options) (*Plan, error) {
	if opts == nil {
		opts = &Options{}
	}
	c := &compiler{
		p: p, data: data, opts: opts,
		errs:    errorList{file: p.File, lines: p.lines},
		targets: map[string]*Target{}, eps: map[string]*EntryPoint{}, groups: map[string]*groupInfo{},
		now: opts.Now,
		log: opts.Logger,
		ctx: opts.Context,
	}
	if c.now.IsZero() {
		c.now = time.Now()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	c.index()
	c.checkRules()
	c.checkOverrides()
	c.buildGroups()
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	plan := c.emit()
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	if err := plan.Validate(); err != nil {
		return nil, fmt.Errorf("steer: compiled an invalid plan (a bug): %w", err)
	}
	c.checkFailover(plan)
	c.checkShadows(plan)
	c.checkShrink(plan)
	if err := plan.Check(opts.Backends...); err != nil {
		c.errs.errs = append(c.errs.errs, err)
	}
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	// The complement's counts cost a fifth of Compile: only for a logger
	// that wants them.
	ctx, _ := c.ctx.(context.Context)
	if ctx == nil {
		ctx = context.Background()
	}
	for _, s := range plan.Sets {
		if !c.log.Enabled(ctx, slog.LevelInfo) {
			break
		}
		n, cn := s.Counts(), s.ComplementCounts()
		c.log.Info("steer: set", "name", s.Name,
			"ranges4", n.Ranges4, "prefixes4", n.Prefixes4, "ranges6", n.Ranges6, "prefixes6", n.Prefixes6,
			"complement_ranges4", cn.Ranges4, "complement_prefixes4", cn.Prefixes4,
			"complement_ranges6", cn.Ranges6, "complement_prefixes6", cn.Prefixes6)
	}
	return plan, nil
}

type compiler struct {
	p    *Policy
	data CountryData
	opts *Options
	errs errorList
	now  time.Time
	log  *slog.Logger
	ctx  interface{ Err() error }

	targets map[string]*Target
	eps     map[string]*EntryPoint
	groups  map[string]*groupInfo
	used    map[string]bool // groups rules use

	// per plan rule: the policy rule it was compiled from
	ruleFrom []int
	// degraded: rules were dropped or widened for lack of country data,
	// so later rules may be shadowed on purpose
	degraded bool
}

func (c *compiler) index() {
	p := c.p
	for i := range p.Targets {
		t := &p.Targets[i]
		f := "targets." + t.Name
		c.defined(f, "target", t.Name, c.targets[t.Name] != nil)
		c.targets[t.Name] = t
		if !t.IPv4.IsValid() && !t.IPv6.IsValid() {
			c.errs.addf(f, ErrSyntax, "target %s has no address", t.Name)
		}
		if t.IPv4.IsValid() && (checkAddr(t.IPv4.Addr(), true) != nil || t.IPv4.Port() == 0) {
			c.errs.addf(f+".ipv4", ErrFamily, "%v is not an IPv4 address and port", t.IPv4)
		}
		if t.IPv6.IsValid() && (checkAddr(t.IPv6.Addr(), false) != nil || t.IPv6.Port() == 0) {
			c.errs.addf(f+".ipv6", ErrFamily, "%v is not an IPv6 address and port", t.IPv6)
		}
	}
	for i := range p.EntryPoints {
		e := &p.EntryPoints[i]
		f := "entry_points." + e.Name
		c.defined(f, "entry point", e.Name, c.eps[e.Name] != nil)
		c.eps[e.Name] = e
		if !e.IPv4.IsValid() && !e.IPv6.IsValid() {
			c.errs.addf(f, ErrSyntax, "entry point %s has no address", e.Name)
		}
		if e.IPv4.IsValid() && checkAddr(e.IPv4, true) != nil {
			c.errs.addf(f+".ipv4", ErrFamily, "%v is not an IPv4 address", e.IPv4)
		}
		if e.IPv6.IsValid() && checkAddr(e.IPv6, false) != nil {
			c.errs.addf(f+".ipv6", ErrFamily, "%v is not an IPv6 address", e.IPv6)
		}
		if slices.Contains(e.Ports, 0) {
			c.errs.addf(f+".ports", ErrSyntax, "port 0")
		}
	}
	for i := range p.Groups {
		g := &p.Groups[i]
		f := "groups." + g.Name
		c.defined(f, "group", g.Name, c.groups[g.Name] != nil)
		c.groups[g.Name] = &groupInfo{g: g}
	}
	if len(p.EntryPoints) == 0 {
		c.errs.add("entry_points", errNoEntryPoints)
	}
	if len(p.Rules) == 0 {
		c.errs.add("rules", errNoRules)
	}
}

func (c *compiler) defined(field, kind, name string, dup bool) {
	if !validName(name) {
		c.errs.addf(field, ErrSyntax, "%s name %q: want [a-z0-9_-]+, at most 63 characters", kind, name)
	}
	if dup {
		c.errs.addf(field, ErrSyntax, "%s %s defined twice", kind, name)
	}
}

func (c *compiler) checkRules() {
	c.used = map[string]bool{}
	names := map[string]bool{}
	for i := range c.p.Rules {
		r := &c.p.Rules[i]
		f := fmt.Sprintf("rules[%d]", i)
		if !validName(r.Name) {
			c.errs.addf(f+".name", ErrSyntax, "rule name %q: want [a-z0-9_-]+", r.Name)
		} else if names[r.Name] {
			c.errs.addf(f+".name", ErrSyntax, "rule %s defined twice", r.Name)
		}
		names[r.Name] = true
		if r.From != "" {
			if c.groups[r.From] == nil {
				c.errs.addf(f+".from", ErrUndefined, "group %q", r.From)
			}
			c.used[r.From] = true
		} else if r.Not {
			c.errs.addf(f+".from", ErrSyntax, "\"not\" needs a group")
		}
		for j, e := range r.EntryPoints {
			if c.eps[e] == nil {
				c.errs.addf(fmt.Sprintf("%s.entry_points[%d]", f, j), ErrUndefined, "entry point %q", e)
			}
		}
		to := f + ".to"
		if len(r.To) > 1 {
			to = f + ".split"
		}
		if len(r.To) == 0 {
			c.errs.addf(f, ErrSyntax, "rule %s has no target", r.Name)
		}
		for j, t := range r.To {
			if c.targets[t] == nil {
				c.errs.addf(fmt.Sprintf("%s[%d]", to, j), ErrUndefined, "target %q", t)
			}
		}
		if r.Weights != nil && len(r.Weights) != len(r.To) {
			c.errs.addf(f+".weights", ErrSyntax, "%d weights for %d targets", len(r.Weights), len(r.To))
		}
		for j, w := range r.Weights {
			if w < 1 || w > 1<<20 {
				c.errs.addf(fmt.Sprintf("%s.weights[%d]", f, j), ErrSyntax, "weight %d: want 1 to %d", w, 1<<20)
			}
		}
		if r.Split == SplitHash && len(c.opts.Backends) == 0 {
			c.errs.addf(f+".by", ErrUnsupported, "a hash split compiles only for named backends (Options.Backends) that can all compute it")
		}
	}
	for i := range c.p.Groups {
		if g := &c.p.Groups[i]; !c.used[g.Name] {
			c.log.Warn("steer: group not used by any rule", "group", g.Name)
		}
	}
}

func (c *compiler) checkOverrides() {
	for i := range c.p.Overrides {
		o := &c.p.Overrides[i]
		f := fmt.Sprintf("overrides[%d]", i)
		gi := c.groups[o.Group]
		if gi == nil {
			c.errs.addf(f+".group", ErrUndefined, "group %q", o.Group)
			continue
		}
		if strings.TrimSpace(o.Reason) == "" {
			c.errs.addf(f+".reason", ErrSyntax, "override without a reason")
		}
		if !o.Expires.IsZero() {
			if !c.now.Before(o.Expires) {
				c.errs.addf(f+".expires", ErrExpired, "expired %s (%q): renew or delete it", o.Expires.Format(time.RFC3339), o.Reason)
			} else if o.Expires.Sub(c.now) < expiryWarning {
				c.log.Warn("steer: override expires soon", "group", o.Group, "reason", o.Reason, "expires", o.Expires)
			}
		}
		gi.overrides = append(gi.overrides, o)
	}
	// An address both added and removed has no clear meaning.
	for _, gi := range c.groups {
		var add, rem cidr.Set
		for _, o := range gi.overrides {
			add, rem = add.Union(o.Add), rem.Union(o.Remove)
		}
		if both := add.Intersect(rem); !both.IsEmpty() {
			c.errs.addf("overrides", ErrOverlap, "group %s: %v", gi.g.Name, both)
		}
	}
}

func (c *compiler) buildGroups() {
	for i := range c.p.Groups {
		g := &c.p.Groups[i]
		gi := c.groups[g.Name]
		if !c.used[g.Name] || gi.g != g {
			continue
		}
		f := "groups." + g.Name
		if g.geo() && c.data == nil {
			if c.p.Safety.OnMissingData == FailError {
				c.errs.addf(f, ErrMissingData, "group %s needs country data (safety.on_missing_data: error)", g.Name)
			}
			gi.missing = true
			continue
		}
		var b cidr.Builder
		for j, cc := range g.Countries {
			s, err := c.data.Country(cc)
			if err != nil {
				c.errs.addf(fmt.Sprintf("%s.countries[%d]", f, j), ErrCountry, "%s: %v", cc, err)
			}
			gi.countries = append(gi.countries, cc)
			gi.sets = append(gi.sets, s)
			b.AddSet(s)
		}
		for j, cc := range g.Continents {
			s, err := c.data.Continent(cc)
			if err != nil {
				c.errs.addf(fmt.Sprintf("%s.continents[%d]", f, j), ErrCountry, "%s: %v", cc, err)
			}
			gi.countries = append(gi.countries, cc)
			gi.sets = append(gi.sets, s)
			b.AddSet(s)
		}
		if g.Unknown {
			b.AddSet(c.data.Unknown())
		}
		b.AddSet(g.Addrs)
		for _, o := range gi.overrides {
			b.AddSet(o.Add)
		}
		for _, o := range gi.overrides {
			b.RemoveSet(o.Remove)
		}
		s, _ := b.Set() // sets only: no invalid input
		gi.set = s
		if s.IsEmpty() {
			c.errs.addf(f, ErrEmptyGroup, "group %s has no addresses", g.Name)
			continue
		}
		if g.geo() {
			least := g.MinEntries
			if least == 0 {
				least = max(c.p.Safety.MinEntries, 1)
			}
			if n := s.NumRanges(); n < least {
				c.errs.addf(f, ErrGate, "group %s has %d entries, fewer than the minimum %d: is the country data truncated?", g.Name, n, least)
			}
		}
	}
}

// A family is 4 or 6.
var families = [2]int{4, 6}

func (c *compiler) emit() *Plan {
	plan := &Plan{}
	for i := range c.p.Groups {
		g := &c.p.Groups[i]
		gi := c.groups[g.Name]
		if !c.used[g.Name] || gi.g != g || gi.missing {
			continue
		}
		comment := g.Comment
		if comment == "" && len(gi.countries) > 0 {
			comment = strings.Join(gi.countries, " ")
		}
		plan.Sets = append(plan.Sets, Set{Name: g.Name, Addrs: gi.set, Comment: comment})
	}
	famErr := map[string]bool{}
	for ri := range c.p.Rules {
		r := &c.p.Rules[ri]
		f := fmt.Sprintf("rules[%d]", ri)
		eps := r.EntryPoints
		if eps == nil {
			for _, e := range c.p.EntryPoints {
				eps = append(eps, e.Name)
			}
		}
		srcSet, not := r.From, r.Not
		drop := false
		if gi := c.groups[r.From]; r.From != "" && gi.missing {
			strict := true
			for _, t := range r.To {
				strict = strict && c.targets[t].Strict
			}
			// Without data the rule matches nobody or everybody, whichever
			// sends connections where the fail mode says.
			drop = strict == (c.p.Safety.OnMissingData == FailNormal)
			srcSet, not = "", false
			c.degraded = true
			c.log.Warn("steer: no country data", "rule", r.Name, "group", r.From, "mode", c.p.Safety.OnMissingData.String(), "dropped", drop)
		}
		if drop {
			continue
		}
		emitted := 0
		for ei, en := range eps {
			e := c.eps[en]
			for _, fam := range families {
				dst := e.Addr(fam)
				if !dst.IsValid() {
					continue
				}
				var tos []netip.AddrPort
				for _, tn := range r.To {
					to := c.targets[tn].Addr(fam)
					if !to.IsValid() {
						key := fmt.Sprint(ri, tn, fam)
						if !famErr[key] {
							famErr[key] = true
							c.errs.addf(f, ErrFamily, "entry point %s has an IPv%d address but target %s has none", e.Name, fam, tn)
						}
					}
					tos = append(tos, to)
				}
				for _, port := range e.ports() {
					if r.Ports != nil && !slices.Contains(r.Ports, port) {
						continue
					}
					emitted++
					name := fmt.Sprintf("%s-%s-v%d-%d", r.Name, e.Name, fam, port)
					base := Rule{Family: fam, DstAddr: dst, DstPort: port, SrcSet: srcSet, SrcSetNot: not, Comment: r.Comment}
					if len(r.To) == 1 {
						rule := base
						rule.Name, rule.Target, rule.To = name, r.To[0], tos[0]
						c.add(plan, rule, ri, f)
						continue
					}
					w := r.Weights
					if w == nil {
						w = slices.Repeat([]int{1}, len(r.To))
					}
					rot := ei
					if r.NoRotate {
						rot = 0
					}
					for j := range r.To {
						k := (j + rot) % len(r.To)
						rule := base
						rule.Name, rule.Target, rule.To = fmt.Sprintf("%s-%d", name, j), r.To[k], tos[k]
						if r.Split == SplitHash {
							rule.SrcHash = hashPart(w, j, r.Seed)
						} else {
							rule.Src = rangePart(fam, w, j)
						}
						c.add(plan, rule, ri, f)
					}
				}
			}
		}
		if emitted == 0 {
			c.errs.addf(f, ErrShadowed, "rule %s matches no entry point and port", r.Name)
		}
	}
	plan.from = &origins{policy: c.p, data: c.data, groups: c.groups, ruleFrom: c.ruleFrom}
	return plan
}

func (c *compiler) add(plan *Plan, r Rule, policyRule int, field string) {
	if !validName(r.Name) {
		c.errs.addf(field+".name", ErrSyntax, "plan rule name %q is longer than 63 characters: shorten the rule or entry point name", r.Name)
	}
	plan.Rules = append(plan.Rules, r)
	c.ruleFrom = append(c.ruleFrom, policyRule)
}

// rangePart returns part j of the family's space split by weights w.
func rangePart(fam int, w []int, j int) netipx.IPRange {
	total := 0
	for _, x := range w {
		total += x
	}
	cum := func(j int) int {
		s := 0
		for _, x := range w[:j] {
			s += x
		}
		return s
	}
	// bound(j) is the first address of part j (0 < j < len(w)).
	bound := func(j int) netip.Addr {
		n := new(big.Int).SetInt64(int64(cum(j)))
		if fam == 4 {
			n.Lsh(n, 32)
			n.Quo(n, big.NewInt(int64(total)))
			v := n.Uint64()
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
		n.Lsh(n, 125) // the size of 2000::/3
		n.Quo(n, big.NewInt(int64(total)))
		n.Add(n, new(big.Int).Lsh(big.NewInt(1), 125)) // 2000::
		var b [16]byte
		n.FillBytes(b[:])
		return netip.AddrFrom16(b)
	}
	lo, hi := netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if fam == 6 {
		lo, hi = netip.IPv6Unspecified(), netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
	}
	if j > 0 {
		lo = bound(j)
	}
	if j < len(w)-1 {
		hi = bound(j + 1).Prev()
	}
	return netipx.IPRangeFrom(lo, hi)
}

// hashPart returns part j of the hash values 0..sum(w)-1 split by weights w.
func hashPart(w []int, j int, seed uint32) HashRange {
	total, lo := 0, 0
	for i, x := range w {
		if i < j {
			lo += x
		}
		total += x
	}
	return HashRange{Seed: seed, Mod: uint32(total), Lo: uint32(lo), Hi: uint32(lo + w[j] - 1)}
}
