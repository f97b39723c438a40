package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/steer"
)

const (
	seed     = "../../steer/testdata/seed.yaml"
	sampleDB = "../../geo/testdata/sample.mmdb"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRender(t *testing.T) {
	// Without -db, geo.FindDefault finds the sample in this source tree
	// (with no installed database to find first).
	old := geo.DefaultPaths
	geo.DefaultPaths = nil
	defer func() { geo.DefaultPaths = old }()
	for _, db := range []string{sampleDB, ""} {
		dir := t.TempDir()
		var out, errb bytes.Buffer
		args := []string{"-policy", seed, "-out", dir, "-max-size", "20000"}
		if db != "" {
			args = append(args, "-db", db)
		}
		if err := run(context.Background(), args, env(nil), &out, &errb); err != nil {
			t.Fatal(err, errb.String())
		}
		if !strings.Contains(errb.String(), `msg="steer: country database" path=`+sampleDB) {
			t.Errorf("-db %q: stderr does not name the database:\n%s", db, errb.String())
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.rsc"))
		if len(files) < 3 { // 1,402 entries do not fit one 20 kB file
			t.Fatalf("-db %q: files %v\n%s", db, files, out.String())
		}
		var all []byte
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if len(b) > 20000 {
				t.Errorf("%s: %d bytes", f, len(b))
			}
			all = append(all, b...)
		}
		for _, want := range []string{
			`address="8.8.0.0/15"`,      // US in the sample
			`address="192.197.82.0/24"`, // the policy's override
			`comment="geosteer foreign-mx1-v4-25: everyone outside`,
			`dst-address="2001:db8::2" dst-port="25" src-address="3000::/4" to-addresses="2001:db8:10::1"`,
		} {
			if !bytes.Contains(all, []byte(want)) {
				t.Errorf("-db %q: no file has %q", db, want)
			}
		}
	}
}

func TestSync(t *testing.T) {
	srv, err := routerostest.NewServer(routerostest.Options{Users: map[string]string{"api": "pw-123"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := env(map[string]string{"ROUTEROS_USER": "api", "ROUTEROS_PASSWORD": "pw-123"})
	args := []string{"-policy", seed, "-db", sampleDB, "-addr", srv.Addr()}

	var out, errb bytes.Buffer
	if err := run(context.Background(), append(args, "-dry-run"), e, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "would change +1403 -0 entries, ") || srv.AddressListLen("ip") != 0 {
		t.Fatalf("dry run: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), args, e, &out, &errb); err != nil {
		t.Fatal(err, out.String())
	}
	if strings.Contains(out.String()+errb.String(), "pw-123") {
		t.Error("password printed")
	}
	mx1, mx2, mx16 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("2001:db8::1")
	for _, tt := range []struct {
		src string
		dst netip.Addr
		to  string
	}{
		{"8.8.8.8", mx1, "10.0.0.1"},             // US, lower half: a
		{"8.8.8.8", mx2, "10.0.0.2"},             // rotated on the second MX
		{"205.193.7.7", mx1, "10.0.0.2"},         // english by override, upper half: b
		{"193.0.6.139", mx1, "10.0.0.3"},         // NL: the strict server
		{"2001:4860::1", mx16, "2001:db8:10::1"}, // US over IPv6
		{"2a00:1450::1", mx16, "2001:db8:10::3"}, // no country in the sample: not english
	} {
		to, _, _, ok := srv.Route(netip.MustParseAddr(tt.src), tt.dst, 25)
		if !ok || to.String() != tt.to {
			t.Errorf("%s -> %v: %v %v, want %s", tt.src, tt.dst, to, ok, tt.to)
		}
	}

	out.Reset()
	if err := run(context.Background(), args, e, &out, &errb); err != nil || !strings.Contains(out.String(), "changed +0 -0 entries, 0 rule") {
		t.Errorf("second run: %v %s", err, out.String())
	}
}

// TestSyncEvery: with -every the command keeps syncing until interrupted,
// and later rounds confirm the router by counts instead of reading every
// entry back: the router sends far fewer bytes than in the first round.
func TestSyncEvery(t *testing.T) {
	srv, err := routerostest.NewServer(routerostest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	var errb bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-policy", seed, "-db", sampleDB, "-addr", srv.Addr(), "-every", "50ms"}, env(nil), out, &errb)
	}()
	var first int64
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(out.String(), srv.Addr()+": changed") < 3 && time.Now().Before(deadline) {
		if first == 0 && strings.Count(out.String(), srv.Addr()+": changed") == 1 {
			first = srv.Stats().BytesOut
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err, errb.String())
	}
	rounds := strings.Count(out.String(), srv.Addr()+": changed")
	if rounds < 3 {
		t.Fatalf("%d rounds:\n%s", rounds, out.String())
	}
	later := (srv.Stats().BytesOut - first) / int64(rounds-1)
	t.Logf("%d rounds; the router sent %d bytes in the first, %d per later one", rounds, first, later)
	if first == 0 || later*4 > first {
		t.Errorf("the router sent %d bytes in the first round and %d per later round", first, later)
	}
	if !strings.Contains(out.String(), "changed +0 -0 entries, 0 rule") {
		t.Errorf("later rounds changed something:\n%s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
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

// policy writes the seed policy, edited by replacing old with new, as name
// in a temporary directory.
func policy(t *testing.T, name, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("seed has no %q", old)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrors(t *testing.T) {
	out := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
		is   error
	}{
		{"no policy", []string{"-db", sampleDB, "-out", out}, "need -policy", nil},
		{"neither -out nor -addr", []string{"-policy", seed, "-db", sampleDB}, "exactly one of -out or -addr", nil},
		{"both -out and -addr", []string{"-policy", seed, "-db", sampleDB, "-out", out, "-addr", "192.0.2.1"}, "exactly one of -out or -addr", nil},
		{"missing policy", []string{"-policy", "nonexistent.yaml", "-db", sampleDB, "-out", out}, "nonexistent.yaml: no such file", os.ErrNotExist},
		{"unknown field", []string{"-policy", policy(t, "typo.yaml", "    comment: mail server A", "    coment: mail server A"), "-db", sampleDB, "-out", out},
			"typo.yaml:34: targets.a.coment: unknown field", steer.ErrUnknownField},
		{"unknown target", []string{"-policy", policy(t, "target.yaml", "to: foreign\n", "to: nowhere\n"), "-db", sampleDB, "-out", out},
			`target.yaml:61: rules[0].to[0]: not defined: target "nowhere"`, steer.ErrUndefined},
		{"hash split", []string{"-policy", policy(t, "hash.yaml", "split: [a, b]\n", "split: [a, b]\n    by: hash\n"), "-db", sampleDB, "-out", out},
			"backend routeros cannot enforce", steer.ErrUnsupported},
		{"same router twice", []string{"-policy", seed, "-db", sampleDB, "-addr", "192.0.2.1, 192.0.2.1"}, "repeated router", nil},
		{"empty router", []string{"-policy", seed, "-db", sampleDB, "-addr", "192.0.2.1,"}, "empty or repeated router", nil},
		{"missing db", []string{"-policy", seed, "-db", "nonexistent.mmdb", "-out", out}, "nonexistent.mmdb: no such file", os.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, env(nil), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("error %v, want %q (%v)", err, tt.want, tt.is)
			}
			if stdout.Len() > 0 {
				t.Errorf("output despite the error:\n%s", stdout.String())
			}
		})
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*")); len(files) > 0 {
		t.Errorf("files written despite errors: %v", files)
	}
}
