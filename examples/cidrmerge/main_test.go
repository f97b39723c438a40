package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.txt", "# trusted\n10.0.0.0/9\n10.128.0.0/9\n192.0.2.1\n2001:db8::/33\n2001:db8:8000::/33\n")
	ex := write("ex.txt", "10.1.0.0/16\n")
	bad := write("bad.txt", "10.0.0.0/8\n10.0.0.1/8\n")
	// 192.0.2.96-111 must not match; 192.0.2.112/28 nobody uses.
	fit := write("fit.txt", "192.0.2.0/26\n192.0.2.64/27\n192.0.2.100\n192.0.2.128/25\n")
	dc := write("dc.txt", "192.0.2.112/28\n")
	tests := []struct {
		name    string
		args    []string
		stdin   string
		out     string
		errPart string // in stderr (summary or error)
		fail    bool
	}{
		{"merge", []string{a}, "", "10.0.0.0/8\n192.0.2.1/32\n2001:db8::/32\n", "5 entries in, 3 prefixes out", false},
		{"stdin", []string{"-q"}, "10.0.0.0/25\n10.0.0.128/25\n", "10.0.0.0/24\n", "", false},
		{"ranges", []string{"-ranges", "-q"}, "10.0.0.1\n10.0.0.2\n10.0.0.3\n", "10.0.0.1-10.0.0.3\n", "", false},
		{"exclude", []string{"-q", "-exclude", ex, a}, "", "10.0.0.0/16\n10.2.0.0/15\n10.4.0.0/14\n10.8.0.0/13\n10.16.0.0/12\n10.32.0.0/11\n10.64.0.0/10\n10.128.0.0/9\n192.0.2.1/32\n2001:db8::/32\n", "", false},
		{"bad line", []string{a, bad}, "", "", "bad.txt:2: \"10.0.0.1/8\": prefix has host bits set", true},
		{"mask", []string{"-q", "-mask", bad}, "", "10.0.0.0/8\n", "", false},
		{"dontcare", []string{"-dontcare", dc, fit}, "", "192.0.2.0/26\n192.0.2.64/27\n192.0.2.100/32\n192.0.2.128/25\n", "inverse list (to match with the opposite rule) needs 29 prefixes", false},
		{"dontcare ranges", []string{"-ranges", "-dontcare", dc, fit}, "", "192.0.2.0-192.0.2.95\n192.0.2.100/32\n192.0.2.128/25\n", "4 entries in, 3 ranges out", false},
		{"max", []string{"-max", "1", "-dontcare", dc, fit}, "", "192.0.2.0/24\n", "IPv4 15 matched wrongly, 0 missed (15 in all, at least 15 possible)", false},
		{"max ranges", []string{"-ranges", "-max", "2", fit}, "", "192.0.2.0-192.0.2.95\n192.0.2.128/25\n", "IPv4 0 matched wrongly, 1 missed", false},
		{"max without dontcare", []string{"-max", "3", fit}, "", "192.0.2.0/26\n192.0.2.64/27\n192.0.2.128/25\n", "0 matched wrongly, 1 missed", false},
		{"negative max", []string{"-max", "-2", fit}, "", "", "-max wants an entry count", true},
		{"missing file", []string{filepath.Join(dir, "nope")}, "", "", "no such file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(tt.args, strings.NewReader(tt.stdin), &out, &errb)
			if tt.fail != (err != nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				errb.WriteString(err.Error())
			}
			if out.String() != tt.out {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tt.out)
			}
			if !strings.Contains(errb.String(), tt.errPart) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.errPart)
			}
		})
	}
}

// TestSample runs the README's quick start input end to end.
func TestSample(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"testdata/ie-nz.txt"}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n < 1000 {
		t.Fatalf("only %d prefixes out of the sample", n)
	}
	if !strings.Contains(errb.String(), "12525 entries in") {
		t.Fatalf("summary: %s", errb.String())
	}
}
