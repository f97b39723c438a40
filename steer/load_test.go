package steer

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestLoadSeed(t *testing.T) {
	p, err := LoadFile("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 3 || !p.Targets[2].Strict || p.Targets[0].IPv6 != netip.MustParseAddrPort("[2001:db8:10::1]:25") {
		t.Errorf("targets: %+v", p.Targets)
	}
	if len(p.EntryPoints) != 2 || p.EntryPoints[1].IPv4 != netip.MustParseAddr("203.0.113.2") {
		t.Errorf("entry points: %+v", p.EntryPoints)
	}
	if g := p.Groups[0]; g.Name != "english" || strings.Join(g.Countries, " ") != "US CA GB AU NZ IE" {
		t.Errorf("groups: %+v", p.Groups)
	}
	if r := p.Rules[0]; r.Name != "foreign" || r.From != "english" || !r.Not || r.To[0] != "foreign" {
		t.Errorf("rule 0: %+v", r)
	}
	if r := p.Rules[1]; r.Name != "split" || r.From != "" || len(r.To) != 2 || r.NoRotate {
		t.Errorf("rule 1: %+v", r)
	}
	if o := p.Overrides[1]; o.Expires != time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC) || !o.Add.Contains(netip.MustParseAddr("198.51.100.63")) {
		t.Errorf("override 1: %+v", o)
	}
	if s := p.Safety; s.MinEntries != 1000 || s.MaxShrink != 0.2 || s.OnMissingData != FailNormal {
		t.Errorf("safety: %+v", s)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error, one per problem
	}{
		{"unknown top field", "targets: {}\nrule: []\n", []string{`test.yaml:2: rule: unknown field: "rule"`}},
		{"unknown target field", "targets:\n  a: {ipv4: 10.0.0.1, port: 25}\n", []string{`test.yaml:2: targets.a.port: unknown field: "port"`}},
		{"bad address", "targets:\n  a:\n    ipv4: 10.0.0.300\n", []string{`test.yaml:3: targets.a.ipv4: syntax error: "10.0.0.300"`}},
		{"v6 under ipv4", "entry_points:\n  mx: {ipv4: \"2001:db8::1\"}\n", []string{"entry_points.mx.ipv4", "not an IPv4 address"}},
		{"bad name", "targets:\n  Mail-A: {ipv4: 10.0.0.1}\n", []string{`test.yaml:2: targets.Mail-A: syntax error: name "Mail-A"`}},
		{"duplicate key", "targets:\n  a: {ipv4: 10.0.0.1}\n  a: {ipv4: 10.0.0.2}\n", []string{`test.yaml:3: targets.a: syntax error: "a" given twice`}},
		{"bad port", "entry_points:\n  mx: {ipv4: 192.0.2.1, ports: [25, 0, x]}\n", []string{"entry_points.mx.ports[1]", `port "x"`}},
		{"bad country form", "groups:\n  g: {countries: [USA]}\n", []string{`test.yaml:2: groups.g.countries[0]: bad country or continent: "USA"`}},
		{"bad continent", "groups:\n  g: {continents: [XX]}\n", []string{"groups.g.continents[0]"}},
		{"bad prefix", "groups:\n  g:\n    prefixes:\n      - 192.0.2.0/24\n      - 10.1.2.3/8\n", []string{`test.yaml:5: groups.g.prefixes[1]: syntax error: "10.1.2.3/8": prefix has host bits set`}},
		{"list without fs", "groups:\n  g: {lists: [x.txt]}\n", []string{"no directory to read lists from"}},
		{"rule without target", "rules:\n  - name: r\n    from: english\n", []string{"test.yaml:2: rules[0]: syntax error: rule r: give to"}},
		{"to and split", "rules:\n  - {name: r, to: a, split: [a, b]}\n", []string{"give either to or split"}},
		{"bad from", "rules:\n  - {name: r, from: not a b, to: a}\n", []string{"rules[0].from"}},
		{"weights without split", "rules:\n  - {name: r, to: a, weights: [1]}\n", []string{"weights and by need a split"}},
		{"bad by", "rules:\n  - {name: r, split: [a, b], by: pcc}\n", []string{`"pcc": want range or hash`}},
		{"override without reason", "overrides:\n  - {group: g, add: [192.0.2.0/24]}\n", []string{"override without a reason"}},
		{"bad expiry", "overrides:\n  - {group: g, add: [192.0.2.0/24], reason: x, expires: soon}\n", []string{"test.yaml:2: overrides[0].expires"}},
		{"bad shrink", "safety: {max_shrink: 150%}\n", []string{"safety.max_shrink"}},
		{"bad fail mode", "safety: {on_missing_data: open}\n", []string{`"open": want error, normal or strict`}},
		{"alias", "targets:\n  a: &x {ipv4: 10.0.0.1}\n  b: *x\n", []string{"anchors and aliases are not supported"}},
		{"merge key", "targets:\n  a: {<<: {ipv4: 10.0.0.1}}\n", []string{"no merge keys"}},
		{"not a mapping", "- a\n- b\n", []string{"want a mapping"}},
		{"yaml syntax", "targets: {a: [}\n", []string{"test.yaml: syntax error: did not find expected node content"}},
		{"yaml syntax line", "targets:\n  a: {ipv4: 10.0.0.1}\n  b: [\n", []string{"test.yaml:3: syntax error: did not find expected node content"}},
		{"tab", "targets:\n\ta: {}\n", []string{"test.yaml:2: syntax error"}},
		{"two documents", "targets: {}\n---\nrules: []\n", []string{"more than one YAML document"}},
		{"empty", "", []string{"empty policy"}},
		{"several problems", "targets:\n  a: {ipv4: x}\nfoo: 1\n", []string{"test.yaml:2: targets.a.ipv4", "test.yaml:3: foo: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("test.yaml", strings.NewReader(tt.src), nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("not a *PolicyError: %T", err)
			}
		})
	}
}

func TestLoadLists(t *testing.T) {
	fsys := fstest.MapFS{
		"lists/partners.txt": {Data: []byte("# partners\n192.0.2.0/25\n2001:db8:99::/48\n")},
		"lists/bad.txt":      {Data: []byte("192.0.2.0/25\nnonsense\n")},
	}
	p, err := Load("p.yaml", strings.NewReader("groups:\n  partners:\n    lists: [lists/partners.txt]\n    prefixes: [198.51.100.1]\n"), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Groups[0].Addrs; s.NumRanges() != 3 || !s.Contains(netip.MustParseAddr("2001:db8:99::1")) {
		t.Errorf("partners = %v", s)
	}
	_, err = Load("p.yaml", strings.NewReader("groups:\n  partners:\n    lists: [lists/bad.txt, lists/none.txt]\n"), fsys)
	for _, w := range []string{`p.yaml:3: groups.partners.lists[0]: syntax error: list lists/bad.txt:2: "nonsense"`, "groups.partners.lists[1]: not defined"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %s", err, w)
		}
	}
}
