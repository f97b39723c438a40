package routeros

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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

// sentenceReader reads sentences from a buffered connection.
type sentenceReader struct{ br *bufio.Reader }

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
// bare word) is returned as an error.
func (r *sentenceReader) ReadSentence() (*proto.Sentence, error) {
	s := &proto.Sentence{Map: map[string]string{}}
	var buf []byte
	for {
		n, err := r.length()
		if err != nil {
			if s.Word != "" {
				err = noEOF(err)
			}
			return nil, err
		}
		if n == 0 {
			return s, nil
		}
		if n > maxWord {
			return nil, fmt.Errorf("word of %d bytes", n)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return nil, noEOF(err)
		}
		w := string(buf)
		switch {
		case s.Word == "":
			s.Word = w
		case strings.HasPrefix(w, ".tag="):
			s.Tag = w[5:]
		case strings.HasPrefix(w, "="):
			k, v, _ := strings.Cut(w[1:], "=")
			s.List = append(s.List, proto.Pair{Key: k, Value: v})
			s.Map[k] = v
		case s.Word == "!fatal":
			return nil, fmt.Errorf("router ended the session: !fatal %s", w)
		default:
			return nil, fmt.Errorf("unexpected word %q in %s", w, s.Word)
		}
	}
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
