package steer

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/geosteer/geosteer/cidr"
)

var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func loadString(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Load("test.yaml", strings.NewReader(src), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func compileSeed(t testing.TB) *Plan {
	t.Helper()
	p, err := LoadFile("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Safety.MinEntries = 1 // the test world is small
	plan, err := Compile(p, newMemData(testWorld), &Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestCompileSeed(t *testing.T) {
	plan := compileSeed(t)
	if len(plan.Sets) != 1 || plan.Sets[0].Name != "english" {
		t.Fatalf("sets = %v", plan.Sets)
	}
	english := plan.Sets[0].Addrs
	for _, a := range []string{"3.1.2.3", "142.1.1.1", "205.193.4.5", "198.51.100.7", "2600::1"} {
		if !english.Contains(netip.MustParseAddr(a)) {
			t.Errorf("english lacks %s", a)
		}
	}
	for _, a := range []string{"2.1.1.1", "36.1.1.1", "198.51.100.200", "2a01::1"} {
		if english.Contains(netip.MustParseAddr(a)) {
			t.Errorf("english holds %s", a)
		}
	}
	var names []string
	for _, r := range plan.Rules {
		names = append(names, r.Name)
	}
	want := "foreign-mx1-v4-25 foreign-mx1-v6-25 foreign-mx2-v4-25 foreign-mx2-v6-25 " +
		"split-mx1-v4-25-0 split-mx1-v4-25-1 split-mx1-v6-25-0 split-mx1-v6-25-1 " +
		"split-mx2-v4-25-0 split-mx2-v4-25-1 split-mx2-v6-25-0 split-mx2-v6-25-1"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("rules:\n got %s\nwant %s", got, want)
	}

	mx1, mx2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	mx1v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		src  string
		dst  netip.Addr
		port uint16
		want string
	}{
		{"3.1.2.3", mx1, 25, "a"},          // US, lower half
		{"3.1.2.3", mx2, 25, "b"},          // rotated
		{"142.1.1.1", mx1, 25, "b"},        // CA, upper half
		{"142.1.1.1", mx2, 25, "a"},        //
		{"::ffff:142.1.1.1", mx1, 25, "b"}, // dual-stack listener form
		{"142.1.1.1", netip.MustParseAddr("::ffff:203.0.113.1"), 25, "b"},
		{"205.193.4.5", mx1, 25, "b"},     // Canadian Government override
		{"2.1.1.1", mx1, 25, "foreign"},   // FR
		{"2.1.1.1", mx2, 25, "foreign"},   //
		{"10.1.1.1", mx1, 25, "foreign"},  // no country: not english
		{"2600::1", mx1v6, 25, "a"},       // US, below 3000::
		{"2a00:2380::1", mx1v6, 25, "a"},  // GB
		{"2a01::1", mx1v6, 25, "foreign"}, // FR
		{"3.1.2.3", mx1, 587, ""},         // port not steered
		{"3.1.2.3", mx1v6, 25, ""},        // families differ
		{"3.1.2.3", netip.MustParseAddr("203.0.113.9"), 25, ""},
	}
	rt, err := plan.Router()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		src := netip.MustParseAddr(tt.src)
		for name, d := range map[string]Decision{"Plan.Route": plan.Route(src, tt.dst, tt.port), "Router.Route": rt.Route(src, tt.dst, tt.port)} {
			if d.Target() != tt.want || d.Matched() != (tt.want != "") {
				t.Errorf("%s(%s, %v, %d) = %+v, want %q", name, tt.src, tt.dst, tt.port, d, tt.want)
			}
		}
	}
}

// seedYAML is a compact seed policy the error cases edit.
const seedYAML = `
targets:
  a: {ipv4: 10.0.0.1, ipv6: "2001:db8:10::1"}
  b: {ipv4: 10.0.0.2, ipv6: "2001:db8:10::2"}
  foreign: {ipv4: 10.0.0.3, ipv6: "2001:db8:10::3", strict: true}
entry_points:
  mx1: {ipv4: 203.0.113.1, ipv6: "2001:db8::1"}
  mx2: {ipv4: 203.0.113.2, ipv6: "2001:db8::2"}
groups:
  english: {countries: [US, CA, GB, AU, NZ, IE]}
rules:
  - {name: foreign, from: not english, to: foreign}
  - {name: split, split: [a, b]}
`

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(string) string
		opts    *Options
		nodata  bool
		kind    error
		message string // substring, with file:line
	}{
		{"unknown country", repl("US, CA", "US, XX"), nil, false, ErrCountry, `test.yaml:10: groups.english.countries[1]: bad country or continent: XX: "XX": unknown country`},
		{"country without data", repl("US, CA", "US, JP"), nil, false, ErrCountry, "JP (Japan): no networks"},
		{"unknown target", repl("split: [a, b]", "split: [a, c]"), nil, false, ErrUndefined, `test.yaml:13: rules[1].split[1]: not defined: target "c"`},
		{"unknown group", repl("not english", "not englsh"), nil, false, ErrUndefined, `rules[0].from: not defined: group "englsh"`},
		{"unknown entry point", repl("split: [a, b]}", "split: [a, b], entry_points: [mx3]}"), nil, false, ErrUndefined, `entry point "mx3"`},
		{"shadowed", func(s string) string { return s + "  - {name: late, from: english, to: a}\n" }, nil, false, ErrShadowed, "rules[2]: rule is shadowed by earlier rules: rule late matches no source that earlier rules (foreign, split) have not taken"},
		{"failover", repl("split: [a, b]}", "split: [a, b], rotate: false}"), nil, false, ErrFailover, "rule split (IPv4, port 25): sources from 0.0.0.0 reach a on every entry point"},
		{"failover duplicate", repl("split: [a, b]}", "split: [a, a, b]}"), nil, false, ErrFailover, "reach a on every entry point"},
		{"ipv6 target missing", repl(`b: {ipv4: 10.0.0.2, ipv6: "2001:db8:10::2"}`, `b: {ipv4: 10.0.0.2}`), nil, false, ErrFamily, "entry point mx1 has an IPv6 address but target b has none"},
		{"empty group", func(s string) string {
			return repl("english: {countries: [US, CA, GB, AU, NZ, IE]}", "english: {prefixes: [192.0.2.0/24]}")(s) +
				"overrides:\n  - {group: english, remove: [192.0.2.0/24], reason: test}\n"
		}, nil, false, ErrEmptyGroup, "groups.english: group is empty"},
		{"expired", func(s string) string {
			return s + "overrides:\n  - {group: english, add: [192.0.2.0/24], reason: a test, expires: 2026-05-01}\n"
		}, nil, false, ErrExpired, `test.yaml:15: overrides[0].expires: override expired: expired 2026-05-02T00:00:00Z ("a test")`},
		{"add and remove", func(s string) string {
			return s + "overrides:\n  - {group: english, add: [192.0.2.0/24], reason: x}\n  - {group: english, remove: [192.0.2.128/25], reason: y}\n"
		}, nil, false, ErrOverlap, "group english: {192.0.2.128/25}"},
		{"min entries", func(s string) string { return s + "safety: {min_entries: 1000}\n" }, nil, false, ErrGate, "group english has 11 entries, fewer than the minimum 1000"},
		{"hash without backends", repl("split: [a, b]}", "split: [a, b], by: hash, seed: 7}"), nil, false, ErrUnsupported, "a hash split compiles only for named backends"},
		{"hash on routeros", repl("split: [a, b]}", "split: [a, b], by: hash, seed: 7}"), &Options{Backends: []Capabilities{NFTables, RouterOS}}, false, ErrUnsupported, "backend routeros cannot enforce: RouterOS PCC's hash function is unpublished"},
		{"missing data", nil, nil, true, ErrMissingData, "group english needs country data"},
		{"shrink", func(s string) string { return s + "safety: {max_shrink: 10%}\n" }, &Options{Previous: bigPrevious()}, false, ErrGate, "set english would lose"},
		{"no rules", func(string) string { return "targets: {a: {ipv4: 10.0.0.1}}\nentry_points: {mx: {ipv4: 192.0.2.1}}\n" }, nil, false, errNoRules, "policy has no rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := seedYAML
			if tt.edit != nil {
				src = tt.edit(src)
			}
			p := loadString(t, src)
			var data CountryData = newMemData(testWorld)
			if tt.nodata {
				data = nil
			}
			opts := tt.opts
			if opts == nil {
				opts = &Options{}
			}
			opts.Now = testNow
			_, err := Compile(p, data, opts)
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error is not %v: %v", tt.kind, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error\n%v\ndoes not contain\n%s", err, tt.message)
			}
			var pe *PolicyError
			if tt.kind != ErrUnsupported && !errors.As(err, &pe) {
				t.Errorf("not a *PolicyError: %v", err)
			}
		})
	}
}

func repl(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("edit does not apply: " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
}

// bigPrevious is a plan whose english set is much larger than the test
// world's.
func bigPrevious() *Plan {
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("0.0.0.0/1"))
	b.AddPrefix(netip.MustParsePrefix("2000::/3"))
	s, _ := b.Set()
	return &Plan{Sets: []Set{{Name: "english", Addrs: s}}}
}

func TestFailModes(t *testing.T) {
	mx1 := netip.MustParseAddr("203.0.113.1")
	for _, tt := range []struct {
		mode string
		want string // where a US and a French source go
	}{
		{"normal", "a b"},             // the foreign rule is dropped: everyone split
		{"strict", "foreign foreign"}, // the foreign rule matches everyone
	} {
		p := loadString(t, seedYAML+"safety: {on_missing_data: "+tt.mode+"}\n")
		plan, err := Compile(p, nil, &Options{Now: testNow})
		if err != nil {
			t.Fatalf("%s: %v", tt.mode, err)
		}
		got := plan.Route(netip.MustParseAddr("3.1.2.3"), mx1, 25).Target() + " " + plan.Route(netip.MustParseAddr("200.1.1.1"), mx1, 25).Target()
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.mode, got, tt.want)
		}
		if len(plan.Sets) != 0 {
			t.Errorf("%s: sets %v without data", tt.mode, plan.Sets)
		}
	}
}

func TestWeightsAndPorts(t *testing.T) {
	src := `
targets:
  a: {ipv4: 10.0.0.1}
  b: {ipv4: 10.0.0.2}
  c: {ipv4: "10.0.0.3:2525"}
entry_points:
  mx1: {ipv4: 203.0.113.1, ports: [25, 587]}
  mx2: {ipv4: 203.0.113.2}
  mx3: {ipv4: 203.0.113.3}
rules:
  - {name: sub, ports: [587], to: c}
  - {name: split, split: [a, b, c], weights: [2, 1, 1]}
`
	plan, err := Compile(loadString(t, src), nil, &Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	mx := []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")}
	// Parts: [0, 128.0.0.0) weight 2, [128, 192) and [192, 256), rotated
	// by one per entry point.
	for _, tt := range []struct {
		src  string
		want string // on mx1, mx2, mx3
	}{
		{"1.2.3.4", "a b c"},
		{"127.255.255.255", "a b c"},
		{"128.0.0.0", "b c a"},
		{"191.255.255.255", "b c a"},
		{"192.0.0.0", "c a b"},
		{"255.255.255.255", "c a b"},
	} {
		var got []string
		for _, m := range mx {
			got = append(got, plan.Route(netip.MustParseAddr(tt.src), m, 25).Target())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%s: %v, want %s", tt.src, got, tt.want)
		}
	}
	if d := plan.Route(netip.MustParseAddr("1.2.3.4"), mx[0], 587); d.To() != netip.MustParseAddrPort("10.0.0.3:2525") {
		t.Errorf("submission: %+v", d)
	}
	if d := plan.Route(netip.MustParseAddr("1.2.3.4"), mx[1], 587); d.Matched() {
		t.Errorf("mx2 has no port 587: %+v", d)
	}
}

func TestRangePartIPv6(t *testing.T) {
	for _, tt := range []struct {
		w    []int
		j    int
		want string
	}{
		{[]int{1, 1}, 0, "::-2fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{[]int{1, 1}, 1, "3000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{[]int{1, 1, 2}, 1, "2800::-2fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{[]int{1}, 0, "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	} {
		if got := rangePart(6, tt.w, tt.j).String(); got != tt.want {
			t.Errorf("rangePart(6, %v, %d) = %s, want %s", tt.w, tt.j, got, tt.want)
		}
	}
	if got := rangePart(4, []int{1, 2}, 1).String(); got != "85.85.85.85-255.255.255.255" {
		t.Errorf("IPv4 thirds: %s", got)
	}
}
