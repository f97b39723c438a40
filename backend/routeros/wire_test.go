package routeros

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestSentenceRoundTrip(t *testing.T) {
	words := []string{"!re", "=.id=*1", "=address=", "=comment=a=b", strings.Repeat("x", 0x90), "=" + strings.Repeat("y", 0x4100), ".tag=7"}
	var b []byte
	for _, w := range words {
		if w == words[4] {
			w = "=long=" + w
		}
		b = appendWord(b, w)
	}
	b = append(b, 0)
	r := &sentenceReader{br: bufio.NewReader(bytes.NewReader(b))}
	s, err := r.ReadSentence()
	if err != nil {
		t.Fatal(err)
	}
	if s.Word != "!re" || s.Tag != "7" || attr(s, ".id") != "*1" || attr(s, "address") != "" || attr(s, "comment") != "a=b" || len(attr(s, "long")) != 0x90 || len(s.List) != 5 || s.Map != nil {
		t.Errorf("%+v", s)
	}
	// Replies other than rows carry the Map as well.
	d := append(appendWord(appendWord(appendWord(nil, "!done"), "=ret=*1A"), ".tag=8"), 0)
	s, err = (&sentenceReader{br: bufio.NewReader(bytes.NewReader(d))}).ReadSentence()
	if err != nil || s.Map["ret"] != "*1A" || s.Tag != "8" || len(s.List) != 1 {
		t.Errorf("%+v %v", s, err)
	}
	if _, err := r.ReadSentence(); err != io.EOF {
		t.Errorf("at the end: %v", err)
	}
}

func TestSentenceReaderErrors(t *testing.T) {
	for _, in := range [][]byte{
		{0xF8},                      // control byte
		{0x05, '!', 'd'},            // short word
		{0x03, '!', 'r', 'e', 0x81}, // short length
		append(appendWord(appendWord(nil, "!fatal"), "session terminated"), 0),
		{0xF0, 0x7F, 0xFF, 0xFF, 0xFF}, // absurd length
	} {
		r := &sentenceReader{br: bufio.NewReader(bytes.NewReader(in))}
		if _, err := r.ReadSentence(); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func FuzzSentenceReader(f *testing.F) {
	f.Add(append(appendWord(appendWord(appendWord(nil, "!done"), "=ret=*1A"), ".tag=3"), 0))
	f.Add([]byte{0xC0, 0x00, 0x01, 'x', 0})
	f.Add([]byte{0xF8})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &sentenceReader{br: bufio.NewReader(bytes.NewReader(in))}
		for range 100 {
			s, err := r.ReadSentence()
			if err != nil {
				return
			}
			// What was read re-encodes to a sentence that reads back the same.
			var b []byte
			b = appendWord(b, s.Word)
			for _, p := range s.List {
				b = appendWord(b, "="+p.Key+"="+p.Value)
			}
			b = append(b, 0)
			if s.Word == "" {
				continue
			}
			s2, err := (&sentenceReader{br: bufio.NewReader(bytes.NewReader(b))}).ReadSentence()
			if err != nil || s2.Word != s.Word || len(s2.Map) != len(s.Map) {
				t.Fatalf("%+v -> %+v %v", s, s2, err)
			}
		}
	})
}
