package routerostest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/go-routeros/routeros/v3/proto"
)

// TestLengthForms round-trips words at every length-form boundary and checks
// that the encoding is minimal and identical to go-routeros' writer.
func TestLengthForms(t *testing.T) {
	for _, tc := range []struct{ n, prefix int }{
		{0, 1}, {1, 1}, {0x7F, 1}, {0x80, 2}, {0x3FFF, 2}, {0x4000, 3},
		{0x1FFFFF, 3}, {0x200000, 4}, {0x200001, 4},
	} {
		w := strings.Repeat("x", tc.n)
		b := appendWord(nil, w)
		if got := len(b) - tc.n; got != tc.prefix {
			t.Errorf("len %#x: prefix %d bytes, want %d", tc.n, got, tc.prefix)
		}
		var pw bytes.Buffer
		wr := proto.NewWriter(&pw)
		wr.BeginSentence()
		wr.WriteWord(w)
		if err := wr.EndSentence(); err != nil {
			t.Fatal(err)
		}
		if want := append(b, 0); !bytes.Equal(pw.Bytes(), want) {
			t.Errorf("len %#x: encoding differs from go-routeros proto writer", tc.n)
		}
		got, err := readWord(bufio.NewReader(bytes.NewReader(b)))
		if err != nil || got != w {
			t.Errorf("len %#x: read back %d bytes, err %v", tc.n, len(got), err)
		}
	}
	// The 4-byte form's upper bound and the 5-byte form are checked on the
	// prefix alone: 256 MiB words are beyond maxWordLen by design.
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0x0FFFFFFF, []byte{0xEF, 0xFF, 0xFF, 0xFF}},
		{0x10000000, []byte{0xF0, 0x10, 0, 0, 0}},
	} {
		if got := appendLength(nil, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("appendLength(%#x) = % x, want % x", tc.n, got, tc.want)
		}
	}
}

// TestNonMinimalInput checks that every form is accepted on input even when
// longer than needed, as RouterOS accepts them.
func TestNonMinimalInput(t *testing.T) {
	for _, prefix := range [][]byte{
		{0x03},
		{0x80, 0x03},
		{0xC0, 0x00, 0x03},
		{0xE0, 0x00, 0x00, 0x03},
		{0xF0, 0x00, 0x00, 0x00, 0x03},
	} {
		in := append(append(append([]byte{}, prefix...), "abc"...), 0)
		words, err := readSentence(bufio.NewReader(bytes.NewReader(in)))
		if err != nil || len(words) != 1 || words[0] != "abc" {
			t.Errorf("prefix % x: got %q, %v", prefix, words, err)
		}
	}
}

func TestControlByte(t *testing.T) {
	for b := 0xF8; b <= 0xFF; b++ {
		_, err := readSentence(bufio.NewReader(bytes.NewReader([]byte{byte(b), 1, 2, 3, 4, 5})))
		if !errors.Is(err, errControlByte) {
			t.Errorf("first byte %#x: err %v, want control byte error", b, err)
		}
	}
}

func TestTruncatedAndOversized(t *testing.T) {
	_, err := readSentence(bufio.NewReader(bytes.NewReader([]byte{0x05, 'a', 'b'})))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated word: %v", err)
	}
	_, err = readSentence(bufio.NewReader(bytes.NewReader([]byte{0x01, 'a'})))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated sentence: %v", err)
	}
	_, err = readSentence(bufio.NewReader(bytes.NewReader(nil)))
	if err != io.EOF {
		t.Errorf("clean end: %v, want io.EOF", err)
	}
	_, err = readSentence(bufio.NewReader(bytes.NewReader([]byte{0xF0, 0xFF, 0xFF, 0xFF, 0xFF})))
	if !errors.Is(err, errWordTooLong) {
		t.Errorf("4 GiB word: %v", err)
	}
}

func TestParseCommand(t *testing.T) {
	c := parseCommand([]string{"/x/print", "=a=b=c", "=empty=", "=bare", ".tag=7", "?>k=v", "?#|!", "junk"})
	if c.Word != "/x/print" || c.Tag != "7" || !c.Tagged {
		t.Fatalf("%+v", c)
	}
	want := []Arg{{"a", "b=c"}, {"empty", ""}, {"bare", ""}}
	if len(c.Args) != 3 || c.Args[0] != want[0] || c.Args[1] != want[1] || c.Args[2] != want[2] {
		t.Errorf("args %+v, want %+v", c.Args, want)
	}
	if len(c.Query) != 2 || c.Query[0] != ">k=v" || c.Query[1] != "#|!" {
		t.Errorf("query %q", c.Query)
	}
}
