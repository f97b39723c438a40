package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the quick start and checks where every sender landed.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), nil, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`127\.0\.0\.10 +192\.0\.2\.1:25 +a +127\.0\.0\.10 `,
		`127\.0\.0\.10 +192\.0\.2\.2:25 +b +127\.0\.0\.10 `,
		`127\.64\.0\.10 +192\.0\.2\.1:25 +b `,
		`127\.64\.0\.10 +192\.0\.2\.2:25 +a `,
		`127\.128\.0\.10 +192\.0\.2\.1:25 +strict +127\.128\.0\.10 +[3-9]\d\d\.\dms`, // tarpitted 300ms
		`127\.128\.0\.10 +192\.0\.2\.2:25 +strict `,
		`fail over\nto the server the other MX would give them:\n127\.0\.0\.10 +192\.0\.2\.1:25 +b `,
		`rule mx1-lower: 1 failover`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFlags(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "english.txt")
	os.WriteFile(list, []byte("192.0.2.0/24\n2001:db8::/32\n"), 0o644)
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"-render", "-proxy", "1", "-tarpit", "20s",
		"-mx", "203.0.113.1:25", "-mx", "203.0.113.2:25", "-mx", "[2001:db8::25]:25",
		"-a", "10.0.0.1:25", "-b", "10.0.0.2:25", "-strict", "10.0.0.3:25",
		"-a", "[fd00::1]:25", "-b", "[fd00::2]:25", "-strict", "[fd00::3]:25",
		"-english", list, "-listen", "203.0.113.1:25=127.0.0.1:2525"}, nil, &out, &errs)
	if err != nil {
		t.Fatal(err, errs.String())
	}
	for _, want := range []string{
		"listen 127.0.0.1:2525 (entry point 203.0.113.1:25), PROXY header to targets: v1",
		"mx1-lower           src 0.0.0.0-127.255.255.255 -> a 10.0.0.1:25",
		"mx2-lower           src 0.0.0.0-127.255.255.255 -> b 10.0.0.2:25",
		"mx3-foreign         src not in english -> strict [fd00::3]:25 (tarpit 20s)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("render lacks %q:\n%s", want, out.String())
		}
	}

	bad := [][]string{
		{"-mx", "203.0.113.1:25"}, // no servers
		{"-mx", "nope"},
		{"-mx", "203.0.113.1:25", "-a", "10.0.0.1:25", "-b", "10.0.0.2:25", "-strict", "10.0.0.3:25", "-english", filepath.Join(dir, "missing")},
		{"-mx", "[2001:db8::25]:25", "-a", "10.0.0.1:25", "-b", "10.0.0.2:25", "-strict", "10.0.0.3:25"}, // no IPv6 servers
		{"-listen", "x", "-mx", "203.0.113.1:25"},
		{"-render", "extra"},
	}
	for _, args := range bad {
		if err := run(context.Background(), args, nil, &out, &errs); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
