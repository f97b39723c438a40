package splitter

import (
	"bytes"
	"testing"
)

// FuzzReadProxyHeader: whatever a trusted front sends, reading its header
// returns (a header and the bytes after it, or an error) without panicking,
// and never returns bytes that were not sent.
func FuzzReadProxyHeader(f *testing.F) {
	addProxySeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, rest, err := readProxyHeader(r)
		if err != nil {
			return
		}
		// rest is what was read past the header: the bytes just before
		// those still unread.
		read := len(in) - r.Len()
		if h == nil || len(rest) > read || !bytes.Equal(in[read-len(rest):read], rest) {
			t.Fatalf("header %v and %d bytes after it, from %d bytes read", h, len(rest), read)
		}
	})
}

// addProxySeeds adds the PROXY header fuzzers' common seeds: v1 over IPv4
// and IPv6, UNKNOWN, v2 PROXY and LOCAL with bytes after them, and no
// header at all.
func addProxySeeds(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 192.0.2.1 40000 25\r\nEHLO x\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 40000 25\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\xc0\x00\x02\x01\x9c\x40\x00\x19HELO"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Add([]byte("EHLO not a header\r\n"))
}
