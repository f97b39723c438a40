package routeros

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend/routeros/routerostest"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a "b" \c`, `"a \"b\" \\c"`},
		{"$x?", `"\$x\?"`},
		{"tab\there\n", `"tab\09here\0A"`},
		{"é", `"\C3\A9"`},
		{"", `""`},
	}
	for _, tt := range tests {
		got := quote(tt.in)
		if got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
		back, n, err := unquote(got)
		if err != nil || back != tt.in || n != len(got) {
			t.Errorf("unquote(%s) = %q, %d, %v", got, back, n, err)
		}
	}
}

func importAll(t *testing.T, im *importer, files []File) {
	t.Helper()
	for _, f := range files {
		if err := im.run(string(f.Data)); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
	}
}

func TestScriptImportRoutesLikePlan(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 3))
	srv := newSim(t, routerostest.Options{})
	handRule, _ := srv.SeedNAT("ip", map[string]string{"chain": "dstnat", "action": "dst-nat", "protocol": "tcp",
		"dst-address": "203.0.113.9", "dst-port": "25", "to-addresses": "10.9.9.9", "to-ports": "25", "comment": "geosteerish, by hand"})
	im := newImporter(t, srv)
	set := randomSet(rnd, 600, 60)
	p := testPlan(t, set)
	sc := &Script{MaxFileSize: 8000}
	files, err := sc.Files(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("%d files; want the lists split", len(files))
	}
	for _, f := range files {
		if len(f.Data) > sc.MaxFileSize {
			t.Errorf("%s: %d bytes", f.Name, len(f.Data))
		}
	}

	// The cut-over alone refuses and changes nothing.
	last := files[len(files)-1]
	if err := im.run(string(last.Data)); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("cut-over before lists: %v", err)
	}
	if len(srv.NATRules("ip")) != 1 {
		t.Fatal("the refused cut-over changed rules")
	}
	// A list file imported twice (duplicates) does not abort.
	importAll(t, im, files[:1])
	importAll(t, im, files)
	sameRouting(t, srv, p, sources(rnd, p, 2000))

	// Re-importing the same script changes nothing.
	before, beforeRules := srv.AddressList("ip", ""), srv.NATRules("ip")
	importAll(t, im, files)
	if after := srv.AddressList("ip", ""); len(after) != len(before) || len(srv.NATRules("ip")) != len(beforeRules) {
		t.Errorf("re-import changed the router: %d -> %d entries", len(before), len(after))
	}

	// A new plan: new generation, rules repointed, the old one removed.
	set = mutate(rnd, set, 0.02)
	p = testPlan(t, set)
	files, err = sc.Files(p)
	if err != nil {
		t.Fatal(err)
	}
	importAll(t, im, files)
	sameRouting(t, srv, p, sources(rnd, p, 2000))
	lists := map[string]bool{}
	for _, fam := range []string{"ip", "ipv6"} {
		for _, e := range srv.AddressList(fam, "") {
			lists[e.List] = true
		}
	}
	if len(lists) != 2 {
		t.Errorf("lists after the second import: %v", lists)
	}
	rules := srv.NATRules("ip")
	if rules[0].ID != handRule || len(rules) != 7 {
		t.Errorf("hand rule moved or rules wrong: %+v", rules)
	}

	// The API sync takes over a scripted router without reloading: the
	// script's lists are exact, so it only repoints nothing.
	r := &Router{Addr: srv.Addr(), User: "admin"}
	if rep := apply(t, r, p); rep.Changed() {
		t.Errorf("sync after import changed %+v", rep)
	}

	// A plan that drops a rule: the script removes it.
	p.Rules = p.Rules[:5]
	files, _ = sc.Files(p)
	importAll(t, im, files)
	sameRouting(t, srv, p, sources(rnd, p, 500))
}

func TestScriptTimeoutAndRender(t *testing.T) {
	rnd := rand.New(rand.NewPCG(4, 4))
	p := testPlan(t, randomSet(rnd, 50, 5))
	at := time.Unix(1e9, 0)
	sc := &Script{Timeout: 36*time.Hour + 90*time.Second, Now: func() time.Time { return at }}
	var one bytes.Buffer
	if err := sc.Render(&one, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(one.String(), " timeout=1d12h1m30s } on-error={}") {
		t.Errorf("no timeout in %.300s", one.String())
	}
	var again bytes.Buffer
	at = at.Add(time.Hour)
	sc.Render(&again, p)
	if one.String() == again.String() {
		t.Error("with a timeout, a new render must load a new generation")
	}
	if _, err := (&Script{MaxFileSize: 100}).Files(p); err == nil {
		t.Error("a tiny MaxFileSize was accepted")
	}
}
