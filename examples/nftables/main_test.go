package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/geosteer/geosteer/steer"
)

const (
	seed     = "../../steer/testdata/seed.yaml"
	sampleDB = "../../geo/testdata/sample.mmdb"
)

func TestRender(t *testing.T) {
	// Without -db, geo.FindDefault finds the sample in this source tree
	// (with no installed database to find first).
	old := geo.DefaultPaths
	geo.DefaultPaths = nil
	defer func() { geo.DefaultPaths = old }()
	for _, db := range []string{sampleDB, ""} {
		var out, errb strings.Builder
		args := []string{"-policy", seed}
		if db != "" {
			args = append(args, "-db", db)
		}
		if err := run(context.Background(), args, &out, &errb); err != nil {
			t.Fatalf("%v: %s", err, errb.String())
		}
		if !strings.Contains(errb.String(), `msg="steer: country database" path=`+sampleDB) {
			t.Errorf("stderr does not name the database:\n%s", errb.String())
		}
		s := out.String()
		for _, want := range []string{
			"table inet geosteer {", "set english_v4 {", "set english_v6 {",
			"\t\t\t8.8.0.0/15,\n",    // US in the sample
			"\t\t\t192.197.82.0/24,", // the policy's override
			`ip daddr 203.0.113.1 tcp dport 25 ip saddr != @english_v4 counter dnat ip to 10.0.0.3:25 comment "foreign-mx1-v4-25: `,
			`ip daddr 203.0.113.2 tcp dport 25 ip saddr 0.0.0.0-127.255.255.255 counter dnat ip to 10.0.0.2:25 comment "split-mx2-v4-25-0: `,
			`ip6 daddr 2001:db8::1 tcp dport 25 ip6 saddr 3000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff counter dnat ip6 to [2001:db8:10::2]:25 comment "split-mx1-v6-25-1: `,
		} {
			if !strings.Contains(s, want) {
				t.Errorf("-db %q: output lacks %q", db, want)
			}
		}
		// The foreign rules come before every split rule.
		if i, j := strings.LastIndex(s, "foreign-mx"), strings.Index(s, "split-mx"); i < 0 || i > j {
			t.Errorf("-db %q: a split rule precedes a foreign rule", db)
		}
	}
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
	for _, tt := range []struct {
		name string
		args []string
		want string
		is   error
	}{
		{"no policy", []string{"-db", sampleDB}, "need -policy", nil},
		{"extra argument", []string{"-policy", seed, "extra"}, "need -policy and no arguments", nil},
		{"apply and dry run", []string{"-policy", seed, "-apply", "-dry-run"}, "exclude each other", nil},
		{"missing policy", []string{"-policy", "nonexistent.yaml", "-db", sampleDB}, "nonexistent.yaml: no such file", os.ErrNotExist},
		{"unknown field", []string{"-policy", policy(t, "typo.yaml", "    comment: mail server A", "    coment: mail server A"), "-db", sampleDB},
			"typo.yaml:34: targets.a.coment: unknown field", steer.ErrUnknownField},
		{"unknown target", []string{"-policy", policy(t, "target.yaml", "to: foreign\n", "to: nowhere\n"), "-db", sampleDB},
			`target.yaml:61: rules[0].to[0]: not defined: target "nowhere"`, steer.ErrUndefined},
		{"hash split", []string{"-policy", policy(t, "hash.yaml", "split: [a, b]\n", "split: [a, b]\n    by: hash\n"), "-db", sampleDB},
			"backend nftables cannot enforce", steer.ErrUnsupported},
		{"missing db", []string{"-policy", seed, "-db", "nonexistent.mmdb"}, "nonexistent.mmdb: no such file", os.ErrNotExist},
		{"not a db", []string{"-policy", seed, "-db", seed}, "seed.yaml: not a MaxMind DB", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb strings.Builder
			err := run(context.Background(), tt.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("error %v, want %q (%v)", err, tt.want, tt.is)
			}
			if out.Len() > 0 {
				t.Errorf("output despite the error:\n%s", out.String())
			}
		})
	}
}

// TestApply applies the seed to a fresh network namespace, twice.
func TestApply(t *testing.T) {
	testenv.NeedRoot(t)
	ip := testenv.NeedCommand(t, "ip", "iproute2")
	var b [4]byte
	rand.Read(b[:])
	ns := "gs-ex-" + hex.EncodeToString(b[:])
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del: %v: %s", err, out)
		}
	})
	for _, step := range []struct {
		flag string
		want []string
	}{
		{"-dry-run", []string{"would change +1402 −0 elements, 12 rules:\n", "  set english_v4: created (+666)\n"}},
		{"-apply", []string{"changed +1402 −0 elements, 12 rules:\n", "  table inet geosteer-test: created\n"}},
		{"-apply", []string{"table inet geosteer-test: no changes\n"}},
		{"-dry-run", []string{"table inet geosteer-test: no changes\n"}},
	} {
		var out, errb strings.Builder
		err := run(context.Background(), []string{"-policy", seed, "-db", sampleDB, "-netns", ns, "-table", "geosteer-test", step.flag}, &out, &errb)
		if err != nil {
			t.Fatalf("%s: %v\n%s", step.flag, err, errb.String())
		}
		for _, w := range step.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", step.flag, w, out.String())
			}
		}
	}
	var out, errb strings.Builder
	if err := run(context.Background(), []string{"-policy", seed, "-db", sampleDB, "-netns", ns + "-none", "-apply"}, &out, &errb); err == nil {
		t.Error("-netns of a missing namespace accepted")
	}
}
