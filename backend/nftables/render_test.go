package nftables

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestRender compares the script of the test plan with testdata/test.nft
// (go test -run TestRender -update rewrites it after a reviewed change);
// TestApplyEqualsNftF loads such scripts into the kernel.
func TestRender(t *testing.T) {
	var buf bytes.Buffer
	be := &Backend{}
	if err := be.Render(&buf, testPlan(t, englishTest(t, "255.255.255.254-255.255.255.255"))); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "test.nft")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Render differs from %s:\n%s", golden, buf.Bytes())
	}
}

func TestRenderInvalid(t *testing.T) {
	p := testPlan(t, englishTest(t))
	p.Rules[0].SrcSet = "nope"
	if err := (&Backend{}).Render(&bytes.Buffer{}, p); err == nil {
		t.Error("Render accepted an invalid plan")
	}
}

func TestCleanComment(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:                 `plain`,
		`the "six"`:             `the 'six'`,
		"a\nb\\c":               `a b'c`,
		string(make([]byte, 3)): "   ",
	} {
		if got := cleanComment(in); got != want {
			t.Errorf("cleanComment(%q) = %q, want %q", in, got, want)
		}
	}
	long := bytes.Repeat([]byte("é"), 100) // 200 bytes
	if got := cleanComment(string(long)); len(got) != 128 {
		t.Errorf("long comment cut to %d bytes, want 128", len(got))
	}
}
