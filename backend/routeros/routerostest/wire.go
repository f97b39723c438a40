package routerostest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// The RouterOS API frames every word with a big-endian length prefix in one
// of five forms. The reader accepts all five (RouterOS itself accepts
// non-minimal encodings, and so do we); the writer always emits the shortest.

// maxWordLen bounds one incoming word. RouterOS has no documented limit, but
// an unbounded allocation driven by a peer's 4-byte length is a trivial DoS
// and would make the fuzzer useless, so longer words are a protocol error.
const maxWordLen = 16 << 20

// errControlByte reports a first length byte >= 0xF8, which the protocol
// reserves for control use; RouterOS answers it with !fatal.
var errControlByte = errors.New("reserved control byte")

// errWordTooLong reports a word longer than maxWordLen.
var errWordTooLong = errors.New("word too long")

// readLength decodes one length prefix.
func readLength(r *bufio.Reader) (int, error) {
	b0, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	var extra int
	var n uint64
	switch {
	case b0 < 0x80:
		return int(b0), nil
	case b0 < 0xC0:
		extra, n = 1, uint64(b0&0x3F)
	case b0 < 0xE0:
		extra, n = 2, uint64(b0&0x1F)
	case b0 < 0xF0:
		extra, n = 3, uint64(b0&0x0F)
	case b0 < 0xF8:
		// 0xF0 form: the low bits of the first byte are not part of the
		// length; RouterOS only ever sends exactly 0xF0 here.
		extra, n = 4, 0
	default:
		return 0, fmt.Errorf("%w 0x%02X", errControlByte, b0)
	}
	for i := 0; i < extra; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		n = n<<8 | uint64(b)
	}
	if n > maxWordLen {
		return 0, fmt.Errorf("%w: %d bytes", errWordTooLong, n)
	}
	return int(n), nil
}

// noEOF turns an EOF inside a word or sentence into io.ErrUnexpectedEOF, so
// callers can tell a clean close between sentences from a truncated one.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readWord reads one word. An empty word ends a sentence.
func readWord(r *bufio.Reader) (string, error) {
	n, err := readLength(r)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", nil
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", noEOF(err)
	}
	return string(buf), nil
}

// readSentence reads words up to the terminating empty word. It returns
// io.EOF only when the stream ends cleanly before the first word; an empty
// sentence (a lone zero-length word) is returned as a nil slice.
func readSentence(r *bufio.Reader) ([]string, error) {
	var words []string
	for {
		w, err := readWord(r)
		if err != nil {
			if len(words) > 0 {
				err = noEOF(err)
			}
			return nil, err
		}
		if w == "" {
			return words, nil
		}
		words = append(words, w)
	}
}

// appendLength appends the minimal length prefix for n.
func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x4000:
		return append(b, byte(n>>8)|0x80, byte(n))
	case n < 0x200000:
		return append(b, byte(n>>16)|0xC0, byte(n>>8), byte(n))
	case n < 0x10000000:
		return append(b, byte(n>>24)|0xE0, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, 0xF0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendWord appends one length-prefixed word.
func appendWord(b []byte, w string) []byte {
	return append(appendLength(b, len(w)), w...)
}

// appendSentence appends the words and the terminating empty word.
func appendSentence(b []byte, words ...string) []byte {
	for _, w := range words {
		b = appendWord(b, w)
	}
	return append(b, 0)
}
