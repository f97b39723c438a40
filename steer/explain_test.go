package steer

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/cidr"
)

func TestExplain(t *testing.T) {
	plan := compileSeed(t)
	mx1 := netip.MustParseAddr("203.0.113.1")
	for _, tt := range []struct {
		src  string
		port uint16
		want []string
	}{
		{"142.1.1.1", 25, []string{"rule split-mx1-v4-25-1 (policy rule split) → b 10.0.0.2:25", "split part 128.0.0.0-255.255.255.255", "data: CA from memdata network 142.0.0.0/8"}},
		{"2.1.1.1", 25, []string{"rule foreign-mx1-v4-25 (policy rule foreign) → foreign", "source not in set english", "data: FR from memdata network 2.0.0.0/12"}},
		{"205.193.4.5", 25, []string{"→ b", `added to english by override "Canadian Government blocks missing from the database"`}},
		{"198.51.100.9", 25, []string{"→ b", "(expires 2032-01-01)"}},
		{"3.1.2.3", 587, []string{"no rule matched", "data: US"}},
	} {
		e := plan.Explain(netip.MustParseAddr(tt.src), mx1, tt.port)
		for _, w := range tt.want {
			if !strings.Contains(e.String(), w) {
				t.Errorf("Explain(%s): %q lacks %q", tt.src, e, w)
			}
		}
	}
	// A split rule has no set; the set that let the source reach it is
	// reported.
	e := plan.Explain(netip.MustParseAddr("3.1.2.3"), mx1, 25)
	if e.Set != "english" || !e.InSet || e.Country != "US" || !e.HasOrigin || e.Origin.Country != "US" || !strings.Contains(e.String(), "source in set english through US") {
		t.Errorf("split rule reached through english: %v", e)
	}
	// A removal override.
	p := loadString(t, seedYAML+"overrides:\n  - {group: english, remove: [3.0.0.0/16], reason: hijacked block}\n")
	plan, err := Compile(p, newMemData(testWorld), &Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	e = plan.Explain(netip.MustParseAddr("3.0.1.1"), mx1, 25)
	if e.Decision.Target() != "foreign" || e.Override == nil || !e.OverrideRemoved || !strings.Contains(e.String(), `removed from english by override "hijacked block"`) {
		t.Errorf("removal: %v", e)
	}
	// In the set through a country.
	p = loadString(t, strings.Replace(seedYAML, "  - {name: foreign, from: not english, to: foreign}\n", "  - {name: english-a, from: english, to: a}\n", 1))
	if plan, err = Compile(p, newMemData(testWorld), &Options{Now: testNow}); err != nil {
		t.Fatal(err)
	}
	if e = plan.Explain(netip.MustParseAddr("87.33.0.1"), mx1, 25); e.Country != "IE" || !strings.Contains(e.String(), "source in set english through IE") {
		t.Errorf("country: %v", e)
	}
}

func TestDiff(t *testing.T) {
	old, err := Compile(loadString(t, seedYAML), newMemData(testWorld), &Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(old, old); !d.Empty() || d.String() != "sets unchanged, rules unchanged" {
		t.Errorf("same plan: %v", d)
	}
	p := loadString(t, seedYAML+"overrides:\n  - {group: english, add: [192.0.2.0/24, 198.51.100.0/25], remove: [3.0.0.0/9], reason: r}\n")
	p.Rules[1].To = []string{"b", "a"}
	p.Rules = append(p.Rules, PolicyRule{Name: "rest", From: "english", To: []string{"a"}, EntryPoints: []string{"mx1"}, Ports: []uint16{25}})
	p.EntryPoints[0].Ports = []uint16{25, 587}
	p.Rules[2].Ports = []uint16{587}
	p.Rules[1].Ports = []uint16{25}
	newPlan, err := Compile(p, newMemData(testWorld), &Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	d := Diff(old, newPlan)
	if len(d.Sets) != 1 {
		t.Fatalf("sets: %+v", d.Sets)
	}
	sd := d.Sets[0]
	// 3.0.0.0/8 loses its lower half.
	wantAdd := setOf(t, "192.0.2.0/24", "198.51.100.0/25")
	if !sd.Added.Equal(wantAdd) || !sd.Removed.Equal(setOf(t, "3.0.0.0/9")) {
		t.Errorf("added %v removed %v", sd.Added, sd.Removed)
	}
	// Entries: 3.0.0.0/8 → 3.128.0.0/9; +198.51.100.0/25 +192.0.2.0/24.
	if sd.EntriesAdded != 3 || sd.EntriesRemoved != 1 {
		t.Errorf("entries +%d −%d", sd.EntriesAdded, sd.EntriesRemoved)
	}
	want := "1 set, +3 −1 entries, rules: 4 added, 8 changed"
	if d.String() != want {
		t.Errorf("String() = %q, want %q", d, want)
	}
	var buf bytes.Buffer
	d.WriteTo(&buf)
	for _, w := range []string{"set english: +3 −1 entries, +384 IPv4 addresses, −8,388,608 IPv4 addresses", "rule +rest-mx1-v4-587", "rule ~split-mx1-v4-25-0"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("WriteTo:\n%s\nlacks %q", buf.String(), w)
		}
	}
	if d := Diff(nil, old); d.Sets[0].EntriesAdded != old.Sets[0].Addrs.NumPrefixes() || len(d.Rules.Added) != len(old.Rules) {
		t.Errorf("from nothing: %v", d)
	}
	if d := Diff(old, &Plan{}); !d.Sets[0].Gone || len(d.Rules.Removed) != len(old.Rules) {
		t.Errorf("to nothing: %v", d)
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Errorf("thousands = %s", got)
	}
}

func setOf(t *testing.T, ps ...string) cidr.Set {
	var b cidr.Builder
	for _, p := range ps {
		b.AddPrefix(netip.MustParsePrefix(p))
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
