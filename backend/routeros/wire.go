package routeros

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-routeros/routeros/v3/proto"
)

// The wire codec. go-routeros' proto Reader and Writer start a goroutine
// and allocate a buffer for every Read and Write call, several per word:
// measured at 1 ms latency, a 100k-entry sync spent about 40% of its CPU
// there (7.1 s against 4.x s with this codec; see benchmarks/README.md).
// The sentences are still proto.Sentence values.

// errControl is a first length byte RouterOS reserves (>= 0xF8).
var errControl = errors.New("reserved control byte in word length")

// maxWord bounds a word from the router; a longer one is corrupt input.
const maxWord = 16 << 20

// sentenceReader reads sentences from a buffered connection. A sentence's
// words are read into one buffer and become one string, which every key,
// value and word of the sentence slices: one allocation per sentence for
// the text, not one per word (a 100k-entry print is 100k sentences).
type sentenceReader struct {
	br   *bufio.Reader
	buf  []byte
	ends []int // end offset of each word in buf
}

// maxSentence bounds a sentence from the router; a longer one is corrupt.
const maxSentence = maxWord

func (r *sentenceReader) length() (int, error) {
	c, err := r.br.ReadByte()
	if err != nil {
		return 0, err
	}
	var extra int
	n := int(c)
	switch {
	case c < 0x80:
		return n, nil
	case c < 0xC0:
		n, extra = n&0x3F, 1
	case c < 0xE0:
		n, extra = n&0x1F, 2
	case c < 0xF0:
		n, extra = n&0x0F, 3
	case c < 0xF8:
		n, extra = 0, 4
	default:
		return 0, errControl
	}
	for range extra {
		c, err := r.br.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		n = n<<8 | int(c)
	}
	return n, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadSentence reads one sentence. A "!fatal" sentence (whose reason is a
// bare word) is returned as an error. Rows ("!re") have List but no Map.
func (r *sentenceReader) ReadSentence() (*proto.Sentence, error) {
	r.buf, r.ends = r.buf[:0], r.ends[:0]
	for {
		n, err := r.length()
		if err != nil {
			if len(r.ends) > 0 {
				err = noEOF(err)
			}
			return nil, err
		}
		if n == 0 {
			break
		}
		if n > maxWord || len(r.buf)+n > maxSentence {
			return nil, fmt.Errorf("word of %d bytes", n)
		}
		r.buf = slices.Grow(r.buf, n)
		w := r.buf[len(r.buf) : len(r.buf)+n]
		if _, err := io.ReadFull(r.br, w); err != nil {
			return nil, noEOF(err)
		}
		r.buf = r.buf[:len(r.buf)+n]
		r.ends = append(r.ends, len(r.buf))
	}
	s := &proto.Sentence{}
	if len(r.ends) == 0 {
		s.Map = map[string]string{}
		return s, nil
	}
	text := string(r.buf)
	attrs := 0
	for _, start := range r.ends[:len(r.ends)-1] { // where words 1.. start
		if text[start] == '=' {
			attrs++
		}
	}
	s.List = make([]proto.Pair, 0, attrs)
	// Rows (!re) come by the hundred thousand and their readers want a few
	// values: they read List (see attr). Other replies get the Map too.
	re := text[:r.ends[0]] == "!re"
	if !re {
		s.Map = make(map[string]string, attrs)
	}
	start := 0
	for i, end := range r.ends {
		w := text[start:end]
		start = end
		switch {
		case i == 0:
			s.Word = w
		case strings.HasPrefix(w, ".tag="):
			s.Tag = w[5:]
		case strings.HasPrefix(w, "="):
			k, v, _ := strings.Cut(w[1:], "=")
			s.List = append(s.List, proto.Pair{Key: k, Value: v})
			if !re {
				s.Map[k] = v
			}
		case s.Word == "!fatal":
			return nil, fmt.Errorf("router ended the session: !fatal %s", w)
		default:
			return nil, fmt.Errorf("unexpected word %q in %s", w, s.Word)
		}
	}
	return s, nil
}

// attr returns the value of attribute k of a sentence read without Map.
func attr(s *proto.Sentence, k string) string {
	for _, p := range s.List {
		if p.Key == k {
			return p.Value
		}
	}
	return ""
}

// appendWord appends one length-prefixed word.
func appendWord(b []byte, w string) []byte {
	switch l := len(w); {
	case l < 0x80:
		b = append(b, byte(l))
	case l < 0x4000:
		b = append(b, byte(l>>8)|0x80, byte(l))
	case l < 0x200000:
		b = append(b, byte(l>>16)|0xC0, byte(l>>8), byte(l))
	case l < 0x10000000:
		b = append(b, byte(l>>24)|0xE0, byte(l>>16), byte(l>>8), byte(l))
	default:
		b = append(b, 0xF0, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	return append(b, w...)
}
