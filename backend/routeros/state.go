package routeros

import (
	"slices"
	"strings"

	"github.com/go-routeros/routeros/v3/proto"
	"go4.org/netipx"
)

// state is what a sync reads from the router: the managed list
// generations and every NAT rule, per family.
type state struct {
	lists [2]map[string]*glist // by list name
	rules [2][]*rrule          // in the router's order
}

// A glist is one managed list generation as found: its tagged entries.
type glist struct {
	name    string
	key     listKey
	gen     string
	entries []entry  // enabled, parsed; sorted by range
	junk    []uint64 // tagged but disabled or unreadable: always removed
}

type entry struct {
	r  netipx.IPRange
	id uint64
}

// An rrule is a NAT rule as found.
type rrule struct {
	id      uint64
	props   map[string]string
	name    string // managed rule name; "" for a rule not ours
	comment string
}

var ruleProps = ".id,chain,action,protocol,dst-address,dst-port,to-addresses,to-ports,comment,disabled,dynamic," +
	strings.Join(matcherFields, ",")

// readState reads the managed entries with one query per family (entries
// carry the tag, so hand-made entries are never even fetched) and all NAT
// rules (their order is global, so all of them matter).
func readState(c *conn, n Names) (*state, error) {
	st := &state{}
	for fi := range 2 {
		lists := map[string]*glist{}
		var bad error
		words := []string{menu(fi) + "/address-list/print", "=.proplist=.id,list,address,disabled", "?comment=" + n.Tag}
		res, err := c.runRe(func(s *proto.Sentence) {
			name := s.Map["list"]
			g := lists[name]
			if g == nil {
				k, gen, ok := n.parseList(name)
				if !ok || famIndex(k.fam) != fi {
					return // a tagged entry in a list not ours: leave it
				}
				g = &glist{name: name, key: k, gen: gen}
				lists[name] = g
			}
			id, ok := parseID(s.Map[".id"])
			if !ok {
				if bad == nil {
					bad = errorf("%s: bad id %q", words[0], s.Map[".id"])
				}
				return
			}
			r, ok := parseEntry(s.Map["address"])
			if !ok || s.Map["disabled"] == "true" || r.From().Is4() != (k4(g.key)) {
				g.junk = append(g.junk, id)
				return
			}
			g.entries = append(g.entries, entry{r, id})
		}, words...)
		if err != nil {
			return nil, err
		}
		if err := res.trapErr(words); err != nil {
			return nil, err
		}
		if bad != nil {
			return nil, bad
		}
		for _, g := range lists {
			slices.SortFunc(g.entries, func(a, b entry) int { return rangeCmp(a.r, b.r) })
		}
		st.lists[fi] = lists

		words = []string{menu(fi) + "/nat/print", "=.proplist=" + ruleProps}
		res, err = c.runRe(func(s *proto.Sentence) {
			id, ok := parseID(s.Map[".id"])
			if !ok {
				if bad == nil {
					bad = errorf("%s: bad id %q", words[0], s.Map[".id"])
				}
				return
			}
			r := &rrule{id: id, props: s.Map, comment: s.Map["comment"]}
			if s.Map["dynamic"] != "true" {
				r.name, _ = n.ruleName(r.comment)
			}
			st.rules[fi] = append(st.rules[fi], r)
		}, words...)
		if err != nil {
			return nil, err
		}
		if err := res.trapErr(words); err != nil {
			return nil, err
		}
		if bad != nil {
			return nil, bad
		}
	}
	return st, nil
}

func k4(k listKey) bool { return k.fam == 4 }

// diff compares a generation with the wanted entries (both sorted): the
// ranges to add and the ids to remove, duplicates included.
func diff(have []entry, want []netipx.IPRange) (adds []netipx.IPRange, removes []uint64) {
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want):
			removes = append(removes, have[i].id)
			i++
		case i == len(have):
			adds = append(adds, want[j])
			j++
		default:
			switch c := rangeCmp(have[i].r, want[j]); {
			case c < 0:
				removes = append(removes, have[i].id)
				i++
			case c > 0:
				adds = append(adds, want[j])
				j++
			default:
				i++
				for i < len(have) && have[i].r == want[j] { // old duplicates
					removes = append(removes, have[i].id)
					i++
				}
				j++
			}
		}
	}
	return adds, removes
}

// diffSize is len(adds)+len(removes) of diff, without allocating.
func diffSize(have []entry, want []netipx.IPRange) int {
	n, i, j := 0, 0, 0
	for i < len(have) && j < len(want) {
		switch c := rangeCmp(have[i].r, want[j]); {
		case c < 0:
			n, i = n+1, i+1
		case c > 0:
			n, j = n+1, j+1
		default:
			i++
			for i < len(have) && have[i].r == want[j] {
				n, i = n+1, i+1
			}
			j++
		}
	}
	return n + len(have) - i + len(want) - j
}
