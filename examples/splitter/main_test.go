package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/steer"
)

const (
	seed     = "../../steer/testdata/seed.yaml"
	sampleDB = "../../geo/testdata/sample.mmdb"
)

// TestDemo runs the quick start and checks where every sender landed.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), nil, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`The demo policy \(testdata/demo.yaml\)`,
		`split-mx1-v4-25-0 +src 0\.0\.0\.0-127\.63\.255\.255 -> a 127\.0\.0\.1:\d+ # rotated on mx2`,
		`127\.0\.0\.10 +192\.0\.2\.1:25 +a +127\.0\.0\.10 `,
		`127\.0\.0\.10 +192\.0\.2\.2:25 +b +127\.0\.0\.10 `,
		`127\.64\.0\.10 +192\.0\.2\.1:25 +b `,
		`127\.64\.0\.10 +192\.0\.2\.2:25 +a `,
		`127\.128\.0\.10 +192\.0\.2\.1:25 +foreign +127\.128\.0\.10 +[3-9]\d\d\.\dms`, // tarpitted 300ms
		`127\.128\.0\.10 +192\.0\.2\.2:25 +foreign `,
		`fail over\nto the server the other MX would give them:\n127\.0\.0\.10 +192\.0\.2\.1:25 +b `,
		`rule split-mx1-v4-25-0: 1 failover`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), "(no IPv6 loopback") && !regexp.MustCompile(`\n::1 +\[2001:db8::1\]:25 +a +::1 `).MatchString(out.String()) {
		t.Errorf("demo output lacks the IPv6 sender on a:\n%s", out.String())
	}
	// Senders on the lenient servers are never tarpitted.
	if m := regexp.MustCompile(`(?m)^\S+ +\S+ +[ab] +\S+ +\d{3,}\.\dms$`).FindString(out.String()); m != "" {
		t.Errorf("a lenient server's sender waited: %s", m)
	}
}

// The demo policy compiles on its own, and every entry point and target
// the demo relies on is there.
func TestDemoPolicy(t *testing.T) {
	p, err := demoPolicy()
	if err != nil {
		t.Fatal(err)
	}
	plan, err := steer.Compile(p, nil, &steer.Options{Backends: []steer.Capabilities{steer.Splitter}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Rules) != 12 {
		t.Errorf("%d rules, want 12 (2 entry points × 2 families × 3)", len(plan.Rules))
	}
	names := map[string]bool{}
	for _, tg := range p.Targets {
		names[tg.Name] = tg.Strict
	}
	if strict, ok := names["a"]; !ok || strict || !names["foreign"] {
		t.Errorf("targets %v: want a and a strict foreign", names)
	}
}

func TestRender(t *testing.T) {
	old := geo.DefaultPaths
	geo.DefaultPaths = nil // without -db: the sample in this source tree
	defer func() { geo.DefaultPaths = old }()
	for _, db := range []string{sampleDB, ""} {
		var out, errs bytes.Buffer
		args := []string{"-policy", seed, "-render", "-proxy", "1", "-tarpit", "foreign=20s",
			"-listen", "203.0.113.1:25=127.0.0.1:2525"}
		if db != "" {
			args = append(args, "-db", db)
		}
		if err := run(context.Background(), args, nil, &out, &errs); err != nil {
			t.Fatal(err, errs.String())
		}
		if !strings.Contains(errs.String(), `msg="steer: country database" path=`+sampleDB) {
			t.Errorf("-db %q: stderr does not name the database:\n%s", db, errs.String())
		}
		for _, want := range []string{
			"set english: 666 IPv4 + 736 IPv6 ranges # countries whose mail goes to the normal servers",
			"listen 127.0.0.1:2525 (entry point 203.0.113.1:25), PROXY header to targets: v1",
			"listen 203.0.113.2:25, PROXY header to targets: v1",
			"split-mx1-v4-25-0   src 0.0.0.0-127.255.255.255 -> a 10.0.0.1:25",
			"split-mx2-v4-25-0   src 0.0.0.0-127.255.255.255 -> b 10.0.0.2:25",
			"foreign-mx2-v6-25   src not in english -> foreign [2001:db8:10::3]:25 (tarpit 20s)",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("-db %q: render lacks %q:\n%s", db, want, out.String())
			}
		}
	}
}

// policy writes the seed policy, edited by replacing old with new, to
// path (a new file in a temporary directory if path is ""), and returns
// the path.
func policy(t *testing.T, path, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("seed has no %q", old)
	}
	if path == "" {
		path = filepath.Join(t.TempDir(), "policy.yaml")
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
		is   error
	}{
		{"no policy", []string{"-db", sampleDB}, "need -policy", nil},
		{"extra argument", []string{"-policy", seed, "extra"}, "need -policy and no arguments", nil},
		{"missing policy", []string{"-policy", "nonexistent.yaml", "-db", sampleDB}, "nonexistent.yaml: no such file", os.ErrNotExist},
		{"unknown field", []string{"-policy", policy(t, "", "    comment: mail server A", "    coment: mail server A"), "-db", sampleDB, "-render"},
			"policy.yaml:34: targets.a.coment: unknown field", steer.ErrUnknownField},
		{"unknown target", []string{"-policy", policy(t, "", "to: foreign\n", "to: nowhere\n"), "-db", sampleDB, "-render"},
			`policy.yaml:61: rules[0].to[0]: not defined: target "nowhere"`, steer.ErrUndefined},
		{"missing db", []string{"-policy", seed, "-db", "nonexistent.mmdb"}, "nonexistent.mmdb: no such file", os.ErrNotExist},
		{"bad -listen", []string{"-policy", seed, "-listen", "x"}, `-listen "x": want entry=local`, nil},
		{"bad -tarpit", []string{"-policy", seed, "-tarpit", "20s"}, `-tarpit "20s": want target=duration`, nil},
		{"unknown -tarpit target", []string{"-policy", seed, "-db", sampleDB, "-render", "-tarpit", "strict=20s"}, "-tarpit strict: no rule", nil},
		{"unknown -listen entry point", []string{"-policy", seed, "-db", sampleDB, "-render", "-listen", "203.0.113.1:587=127.0.0.1:2525"}, "-listen 203.0.113.1:587: the policy has no such entry point", nil},
		{"bad -trusted", []string{"-policy", seed, "-trusted", "10.0.0.1"}, "-trusted", nil},
		{"bad -engine", []string{"-policy", seed, "-engine", "threads"}, `unknown engine "threads"`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			err := run(context.Background(), tt.args, nil, &out, &errs)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("error %v, want %q (%v)", err, tt.want, tt.is)
			}
			if out.Len() > 0 {
				t.Errorf("output despite the error:\n%s", out.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the log has n lines matching re.
func waitFor(t *testing.T, log *syncBuffer, re string, n int) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for len(rx.FindAllString(log.String(), -1)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q (%d) in the log:\n%s", re, n, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReload runs the splitter on the seed policy and reloads it on
// SIGHUP: an added override goes in; a broken policy and a shrink beyond
// safety.max_shrink are refused, leaving the plan in force.
func TestReload(t *testing.T) {
	path := policy(t, "", "safety:", "safety:") // the seed as it is
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	var log syncBuffer
	done := make(chan error, 1)
	args := []string{"-policy", path, "-db", sampleDB, "-health", "-1s"}
	for _, ep := range []string{"203.0.113.1:25", "203.0.113.2:25", "[2001:db8::1]:25", "[2001:db8::2]:25"} {
		args = append(args, "-listen", ep+"=127.0.0.1:0")
	}
	go func() { done <- run(ctx, args, hup, &log, &log) }()
	waitFor(t, &log, `msg="steer: set"`, 1)

	steps := []struct {
		old, new string
		want     string
	}{
		{"    add: [198.51.100.0/26]\n", "    add: [198.51.100.0/26, 198.18.0.0/15]\n",
			`msg=reloaded .* changes="1 set, \+1 −0 entries, rules unchanged"`},
		{"to: foreign\n", "to: nowhere\n",
			`msg="reload failed; the plan in force stays" err=".*policy.yaml:61: rules\[0\]\.to\[0\]: not defined`},
		{"countries: [US, CA, GB, AU, NZ, IE]", "countries: [IE, NZ]\n    min_entries: 1",
			`msg="reload failed; the plan in force stays" err=".*policy.yaml:\d+: groups.english: safety gate: set english would lose`},
	}
	for _, st := range steps {
		policy(t, path, st.old, st.new)
		hup <- syscall.SIGHUP
		waitFor(t, &log, st.want, 1)
	}
	// The same policy again: nothing changes.
	policy(t, path, "    add: [198.51.100.0/26]\n", "    add: [198.51.100.0/26, 198.18.0.0/15]\n")
	hup <- syscall.SIGHUP
	waitFor(t, &log, `msg=reloaded .* changes="sets unchanged, rules unchanged"`, 1)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
	waitFor(t, &log, `msg="shutting down"`, 1)
}
