package steer_test

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
)

// world is a toy country database; a *geo.DB is the real one.
type world map[string]string // country → prefix list

func (w world) Country(cc string) (cidr.Set, error) {
	list, ok := w[cc]
	if !ok {
		return cidr.Set{}, fmt.Errorf("no networks for %s", cc)
	}
	return cidr.ParseList(cc, strings.NewReader(strings.ReplaceAll(list, " ", "\n")), cidr.ParseOptions{})
}

func (w world) Continent(string) (cidr.Set, error) { return cidr.Set{}, fmt.Errorf("no continents") }
func (w world) Unknown() cidr.Set                  { return cidr.Set{} }

var toyWorld = world{
	"US": "3.0.0.0/8 2600::/12", "CA": "142.0.0.0/8", "GB": "81.128.0.0/11",
	"AU": "1.128.0.0/11", "NZ": "202.36.0.0/14", "IE": "87.32.0.0/12",
}

var (
	mx1  = netip.MustParseAddr("203.0.113.1")
	mx2  = netip.MustParseAddr("203.0.113.2")
	when = &steer.Options{Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
)

func seed() *steer.Plan {
	p, err := steer.LoadFile("testdata/seed.yaml")
	if err != nil {
		panic(err)
	}
	p.Safety.MinEntries = 1 // the toy world is small
	plan, err := steer.Compile(p, toyWorld, when)
	if err != nil {
		panic(err)
	}
	return plan
}

// The seed's policy file, loaded and compiled.
func ExampleLoadFile() {
	p, err := steer.LoadFile("testdata/seed.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Safety.MinEntries = 1 // the toy world is small
	plan, err := steer.Compile(p, toyWorld, when)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range plan.Sets {
		c := s.Counts()
		fmt.Printf("set %s (%s): %d IPv4 ranges, %d IPv6 ranges\n", s.Name, s.Comment, c.Ranges4, c.Ranges6)
	}
	for _, r := range plan.Rules {
		if r.Family != 4 {
			continue
		}
		cond := "everyone"
		if r.SrcSet != "" {
			cond = r.SrcSet
			if r.SrcSetNot {
				cond = "not " + cond
			}
		}
		if r.Src.IsValid() {
			cond = r.Src.String()
		}
		fmt.Printf("%-18s %v:%d  %-28s → %s\n", r.Name, r.DstAddr, r.DstPort, cond, r.Target)
	}
	// Output:
	// set english (countries whose mail goes to the normal servers): 9 IPv4 ranges, 1 IPv6 ranges
	// foreign-mx1-v4-25  203.0.113.1:25  not english                  → foreign
	// foreign-mx2-v4-25  203.0.113.2:25  not english                  → foreign
	// split-mx1-v4-25-0  203.0.113.1:25  0.0.0.0-127.255.255.255      → a
	// split-mx1-v4-25-1  203.0.113.1:25  128.0.0.0-255.255.255.255    → b
	// split-mx2-v4-25-0  203.0.113.2:25  0.0.0.0-127.255.255.255      → b
	// split-mx2-v4-25-1  203.0.113.2:25  128.0.0.0-255.255.255.255    → a
}

// Validation errors name the file, the line and the field.
func ExampleLoad_errors() {
	policy := `
targets:
  a: {ipv4: 10.0.0.1}
  b: {ipv4: 10.0.0.2, weight: 2}
entry_points:
  mx1: {ipv4: 203.0.113.1}
  mx2: {ipv4: 203.0.113.2}
rules:
  - {name: split, split: [a, b], rotate: false}
`
	_, err := steer.Load("mx.yaml", strings.NewReader(policy), nil)
	fmt.Println(err)
	p, _ := steer.Load("mx.yaml", strings.NewReader(strings.Replace(policy, ", weight: 2", "", 1)), nil)
	_, err = steer.Compile(p, nil, nil)
	fmt.Println(err)
	// Output:
	// mx.yaml:4: targets.b.weight: unknown field: "weight" (want one of ipv4, ipv6, strict, comment)
	// mx.yaml:9: rules[0]: split breaks MX failover: rule split (IPv4, port 25): sources from 0.0.0.0 reach a on every entry point; rotate the split (rotate: true) so a retry on the next MX reaches another server
}

func ExamplePlan_Router() {
	rt, err := seed().Router()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, src := range []string{"3.1.2.3", "142.1.1.1", "::ffff:142.1.1.1", "8.8.8.8"} {
		a := netip.MustParseAddr(src)
		fmt.Printf("%-16s mx1 → %-7s mx2 → %s\n", src, rt.Route(a, mx1, 25).Target(), rt.Route(a, mx2, 25).Target())
	}
	// Output:
	// 3.1.2.3          mx1 → a       mx2 → b
	// 142.1.1.1        mx1 → b       mx2 → a
	// ::ffff:142.1.1.1 mx1 → b       mx2 → a
	// 8.8.8.8          mx1 → foreign mx2 → foreign
}

// A Decision names the matching rule of the plan; its target is read from
// the rule. The compiled Router's Decisions equal the plan's.
func ExampleDecision() {
	plan := seed()
	rt, err := plan.Router()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := rt.Route(netip.MustParseAddr("3.1.2.3"), mx1, 25)
	fmt.Println(d.Matched(), d.Rule(), d.Target(), d.To(), plan.Rules[d.Rule()].Name)
	fmt.Println(d == plan.Route(netip.MustParseAddr("3.1.2.3"), mx1, 25))
	none := rt.Route(netip.MustParseAddr("3.1.2.3"), mx1, 587)
	fmt.Println(none.Matched(), none.Rule(), none == steer.Decision{}, none)
	// Output:
	// true 4 a 10.0.0.1:25 split-mx1-v4-25-0
	// true
	// false -1 true no rule
}

// A listener resolves its entry point once; then each connection costs
// about one table lookup, and the rule indexes the plan's rules.
func ExampleRouter_Entry() {
	plan := seed()
	rt, err := plan.Router()
	if err != nil {
		fmt.Println(err)
		return
	}
	mx1Entry := rt.Entry(mx1, 25)
	for _, src := range []string{"3.1.2.3", "142.1.1.1", "8.8.8.8"} {
		i := mx1Entry.Rule(netip.MustParseAddr(src))
		fmt.Printf("%-9s rule %d → %s\n", src, i, plan.Rules[i].Target)
	}
	fmt.Println(rt.Entry(mx1, 587) == nil, rt.Entry(mx1, 587).Rule(netip.MustParseAddr("8.8.8.8")))
	// Output:
	// 3.1.2.3   rule 4 → a
	// 142.1.1.1 rule 5 → b
	// 8.8.8.8   rule 0 → foreign
	// true -1
}

func ExamplePlan_Explain() {
	plan := seed()
	fmt.Println(plan.Explain(netip.MustParseAddr("205.193.7.7"), mx1, 25))
	fmt.Println(plan.Explain(netip.MustParseAddr("87.40.1.1"), mx2, 25))
	// Output:
	// rule split-mx1-v4-25-1 (policy rule split) → b 10.0.0.2:25; source in split part 128.0.0.0-255.255.255.255; source in set english; added to english by override "Canadian Government blocks missing from the database"
	// rule split-mx2-v4-25-0 (policy rule split) → b 10.0.0.2:25; source in split part 0.0.0.0-127.255.255.255; source in set english through IE
}

// Diff shows what a new compilation changes; the shrink gate refuses one
// that loses too much of a set.
func ExampleDiff() {
	old := seed()
	for _, block := range []string{"3.0.0.0/9", "3.0.0.0/12"} {
		p, _ := steer.LoadFile("testdata/seed.yaml")
		p.Safety.MinEntries = 1
		p.Overrides = append(p.Overrides, steer.Override{
			Group:  "english",
			Remove: mustSet(block),
			Reason: "block resold abroad",
		})
		next, err := steer.Compile(p, toyWorld, &steer.Options{Now: when.Now, Previous: old})
		if err != nil {
			fmt.Println(err)
			continue
		}
		steer.Diff(old, next).WriteTo(os.Stdout)
	}
	// Output:
	// testdata/seed.yaml:54: groups.english: safety gate: set english would lose 21.4% of its IPv4 addresses (limit 20.0%, safety.max_shrink)
	// 1 set, +4 −1 entries, rules unchanged
	//   set english: +4 −1 entries, −1,048,576 IPv4 addresses
}

func mustSet(p string) cidr.Set {
	s, err := cidr.ParseList("", strings.NewReader(p), cidr.ParseOptions{})
	if err != nil {
		panic(err)
	}
	return s
}
