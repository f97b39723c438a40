package splitter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	proxyproto "github.com/pires/go-proxyproto"
)

// PROXY protocol signatures (haproxy.org/download/2.9/doc/proxy-protocol.txt).
var (
	proxySigV1 = []byte("PROXY ")
	proxySigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// proxyMaxV1 is the longest v1 header, CRLF included.
const proxyMaxV1 = 107

var errNotProxy = errors.New("not a PROXY protocol header")

// proxyHeaderLen frames a PROXY header at the start of b, which holds the
// bytes received so far: it returns the header's length, or 0 and no error
// if b is a proper beginning of one and more bytes are needed, or an error
// if b cannot begin a header. It only frames; parsing is go-proxyproto's
// (see [parseProxyHeader]). It lets the event loop read a header without
// blocking and without reading past what it needs to decide.
func proxyHeaderLen(b []byte) (int, error) {
	switch {
	case bytes.HasPrefix(b, proxySigV2):
		if len(b) < 16 {
			return 0, nil
		}
		n := 16 + (int(b[14])<<8 | int(b[15]))
		if len(b) < n {
			return 0, nil
		}
		return n, nil
	case bytes.HasPrefix(b, proxySigV1):
		i := bytes.Index(b[:min(len(b), proxyMaxV1)], []byte("\r\n"))
		if i >= 0 {
			return i + 2, nil
		}
		if len(b) >= proxyMaxV1 {
			return 0, fmt.Errorf("%w: v1 line longer than %d bytes", errNotProxy, proxyMaxV1)
		}
		return 0, nil
	case len(b) < len(proxySigV2) && bytes.HasPrefix(proxySigV2, b),
		len(b) < len(proxySigV1) && bytes.HasPrefix(proxySigV1, b):
		return 0, nil
	}
	return 0, errNotProxy
}

// parseProxyHeader parses a header framed by [proxyHeaderLen] with the
// same library the goroutine engine reads it with; the header must take
// all of b.
func parseProxyHeader(b []byte) (*proxyproto.Header, error) {
	br := bufio.NewReaderSize(bytes.NewReader(b), max(len(b), 16))
	h, err := proxyproto.Read(br)
	if err != nil {
		return nil, err
	}
	if br.Buffered() != 0 {
		return nil, fmt.Errorf("%w: %d bytes left inside the frame", errNotProxy, br.Buffered())
	}
	return h, nil
}
