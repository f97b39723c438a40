package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/backend/routeros/routerostest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRender(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-db", "testdata/countries.csv", "-out", dir, "-max-size", "5200"}, env(nil), &out, &errb)
	if err != nil {
		t.Fatal(err, errb.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.rsc"))
	if len(files) < 2 {
		t.Fatalf("files %v\n%s", files, out.String())
	}
	cut, err := os.ReadFile(filepath.Join(dir, "geosteer-cutover.rsc"))
	if err != nil || !strings.Contains(string(cut), `comment="geosteer foreign-mx1"`) {
		t.Fatalf("cut-over: %v\n%s", err, cut)
	}
}

func TestSync(t *testing.T) {
	srv, err := routerostest.NewServer(routerostest.Options{Users: map[string]string{"api": "pw-123"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := env(map[string]string{"ROUTEROS_USER": "api", "ROUTEROS_PASSWORD": "pw-123"})
	args := []string{"-db", "testdata/countries.csv", "-addr", srv.Addr(),
		"-mx", "203.0.113.1,203.0.113.2,2001:db8:25::1", "-a6", "[2001:db8::a]:25", "-b6", "[2001:db8::b]:25", "-foreign6", "[2001:db8::f]:25"}

	var out, errb bytes.Buffer
	if err := run(context.Background(), append(args, "-dry-run"), e, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "would change +") || srv.AddressListLen("ip") != 0 {
		t.Fatalf("dry run: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), args, e, &out, &errb); err != nil {
		t.Fatal(err, out.String())
	}
	if strings.Contains(out.String()+errb.String(), "pw-123") {
		t.Error("password printed")
	}
	mx1, mx2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	for _, tt := range []struct {
		src string
		dst netip.Addr
		to  string
	}{
		{"8.8.8.8", mx1, "10.0.0.1"},                                            // US, lower half: A
		{"8.8.8.8", mx2, "10.0.0.2"},                                            // rotated on the second MX
		{"200.0.0.5", mx1, "10.0.0.2"},                                          // NZ, upper half
		{"1.0.1.1", mx1, "10.0.0.3"},                                            // CN: the strict server
		{"2001:db8:2::1", netip.MustParseAddr("2001:db8:25::1"), "2001:db8::f"}, // FR over IPv6
		{"2001:db8:1::1", netip.MustParseAddr("2001:db8:25::1"), "2001:db8::a"}, // IE, lower half
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
	if err := run(context.Background(), []string{"-db", "testdata/countries.csv"}, e, &out, &errb); err == nil {
		t.Error("no -out nor -addr accepted")
	}
}
