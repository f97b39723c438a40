package routeros

import (
	"fmt"
	"iter"
	"slices"
	"strconv"

	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// desired is what a plan asks of a router, independent of its current
// state: the content of each referenced list and the managed NAT rules of
// each family in plan order.
type desired struct {
	lists []dlist
	rules [2][]drule // [0] /ip, [1] /ipv6
}

// A dlist is the wanted content of the lists of one set in one family:
// sorted, disjoint ranges, one entry each (IPv6 ranges are split into
// prefixes, since RouterOS takes ranges in IPv4 lists only). The entries
// are never materialised: set is the plan's own (immutable) value, and
// [allEntries] walks it.
type dlist struct {
	key listKey
	set cidr.Set // this family only
	n   int      // number of entries
}

func (d *dlist) all() iter.Seq[netipx.IPRange] { return allEntries(d.set, d.key.fam) }

// A drule is one managed NAT rule. Its src-address-list, if any, is filled
// in once the list generation is known.
type drule struct {
	name    string // the plan rule's name, with ".N" for split IPv6 parts
	comment string // the full managed comment
	fields  []field
	list    listKey // zero if the rule matches no set
	neg     bool
}

type field struct{ k, v string }

// famIndex maps a family to its menu index.
func famIndex(fam int) int {
	if fam == 6 {
		return 1
	}
	return 0
}

func menu(fi int) string {
	if fi == 1 {
		return "/ipv6/firewall"
	}
	return "/ip/firewall"
}

// compile derives the desired state from a valid plan.
func compile(p *steer.Plan, n Names) (*desired, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	// Hash splits need PCC, whose hash no other backend can reproduce.
	if err := p.Check(steer.RouterOS); err != nil {
		return nil, err
	}
	d := &desired{}
	seen := map[listKey]bool{}
	for _, r := range p.Rules {
		fi := famIndex(r.Family)
		var key listKey
		if r.SrcSet != "" {
			key = listKey{r.SrcSet, r.Family}
			if !seen[key] {
				seen[key] = true
				s, _ := p.Set(r.SrcSet)
				fs := familySet(s.Addrs, r.Family)
				d.lists = append(d.lists, dlist{key: key, set: fs, n: numEntries(fs, r.Family)})
			}
		}
		srcs := []string{""}
		if r.Src.IsValid() {
			if r.Family == 4 {
				srcs = []string{ruleAddress(r.Src)}
			} else {
				srcs = srcs[:0]
				for _, pfx := range r.Src.Prefixes() {
					srcs = append(srcs, pfx.String())
				}
			}
		}
		for i, src := range srcs {
			name := r.Name
			if len(srcs) > 1 {
				name += "." + strconv.Itoa(i)
			}
			fs := []field{
				{"chain", "dstnat"}, {"action", "dst-nat"}, {"protocol", "tcp"},
				{"dst-address", r.DstAddr.String()}, {"dst-port", strconv.Itoa(int(r.DstPort))},
			}
			if src != "" {
				fs = append(fs, field{"src-address", src})
			}
			fs = append(fs, field{"to-addresses", r.To.Addr().String()}, field{"to-ports", strconv.Itoa(int(r.To.Port()))})
			d.rules[fi] = append(d.rules[fi], drule{
				name: name, comment: n.ruleComment(name, r.Comment),
				fields: fs, list: key, neg: r.SrcSetNot,
			})
		}
	}
	return d, nil
}

// fields returns the rule's fields with its list named; the order is the
// one a technician reads in an export.
func (r *drule) allFields(listName string) []field {
	out := make([]field, 0, len(r.fields)+2)
	for _, f := range r.fields {
		out = append(out, f)
		if f.k == "dst-port" && r.list != (listKey{}) {
			v := listName
			if r.neg {
				v = "!" + v
			}
			out = append(out, field{"src-address-list", v})
		}
	}
	return append(out, field{"comment", r.comment})
}

// entries lists the set's addresses of one family as list entries.
func entries(s steer.Set, fam int) []netipx.IPRange {
	return slices.Collect(allEntries(s.Addrs, fam))
}

// familySet is the part of s in one family.
func familySet(s cidr.Set, fam int) cidr.Set {
	if fam == 4 {
		return s.IPv4()
	}
	return s.IPv6()
}

// allEntries walks the list entries of s's addresses of one family in
// order: IPv4 ranges (one entry where prefixes would need several), IPv6
// prefixes.
func allEntries(s cidr.Set, fam int) iter.Seq[netipx.IPRange] {
	if fam == 4 {
		return s.IPv4().AllRanges()
	}
	return func(yield func(netipx.IPRange) bool) {
		for p := range s.IPv6().AllPrefixes() {
			if !yield(netipx.RangeOfPrefix(p)) {
				return
			}
		}
	}
}

func numEntries(s cidr.Set, fam int) int {
	if fam == 4 {
		return s.IPv4().NumRanges()
	}
	return s.IPv6().NumPrefixes()
}

// ruleAddress is a firewall rule address value for an IPv4 range.
func ruleAddress(r netipx.IPRange) string {
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.String()
}

// sameAddress compares rule address values by meaning ("1.2.3.4" and
// "1.2.3.4/32" are one address), since routers print them their own way.
func sameAddress(a, b string) bool {
	if a == b {
		return true
	}
	na, nb := len(a) > 0 && a[0] == '!', len(b) > 0 && b[0] == '!'
	if na != nb {
		return false
	}
	if na {
		a, b = a[1:], b[1:]
	}
	ra, ok1 := parseEntry(a)
	rb, ok2 := parseEntry(b)
	return ok1 && ok2 && ra == rb
}

// matcherFields are NAT properties that change what a rule matches; a
// managed rule must carry none the plan does not give it.
var matcherFields = []string{
	"src-address", "src-address-list", "src-port", "port", "dst-address-list",
	"in-interface", "out-interface", "in-interface-list", "out-interface-list",
	"per-connection-classifier", "connection-state", "connection-mark",
	"connection-type", "packet-mark", "routing-mark",
}

func rangeCmp(a, b netipx.IPRange) int {
	if c := a.From().Compare(b.From()); c != 0 {
		return c
	}
	return a.To().Compare(b.To())
}

func errorf(format string, args ...any) error { return fmt.Errorf("routeros: "+format, args...) }
