// Package splittertest provides SMTP sinks for tests, demos and benchmarks
// of the splitter, like net/http/httptest: small servers on loopback that
// greet with a banner naming themselves and the client they see, answer
// EHLO, DATA and QUIT, and count what they receive.
package splittertest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// A Sink is a minimal SMTP server. Its banner is
//
//	220 NAME ESMTP client=ADDR
//
// where ADDR is the client's address as the sink sees it: from the PROXY
// header when one is sent (v1 or v2, parsed with github.com/pires/go-proxyproto),
// else the peer's. After DATA it replies "250 2.0.0 N bytes sha256=HEX" for
// the N bytes of the message (dot-unstuffed, terminator excluded).
//
// Invariant: Sessions counts connections that got the banner; a Sink is
// safe for concurrent use and stops with Close.
type Sink struct {
	Name string
	Addr netip.AddrPort

	Sessions atomic.Int64

	ln      *net.TCPListener
	proxy   bool
	silent  atomic.Bool
	mu      sync.Mutex
	clients []netip.AddrPort
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

// NewSink starts a sink on addr ("127.0.0.1:0" for any free port). With
// proxy, every connection must begin with a PROXY v1 or v2 header, as with
// Postfix's postscreen_upstream_proxy_protocol = haproxy.
func NewSink(name, addr string, proxy bool) (*Sink, error) {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenTCP("tcp", a)
	if err != nil {
		return nil, err
	}
	s := &Sink{Name: name, Addr: ln.Addr().(*net.TCPAddr).AddrPort(), ln: ln, conns: map[net.Conn]bool{}, proxy: proxy}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// SetSilent makes the sink accept connections but never greet (a hung
// server), or greet again.
func (s *Sink) SetSilent(silent bool) { s.silent.Store(silent) }

// Clients returns the client addresses the sink has greeted, in order.
func (s *Sink) Clients() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.AddrPort(nil), s.clients...)
}

// Close stops the sink and closes its connections.
func (s *Sink) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Sink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors (a test that starves its process, the
			// splitter's and this sink's alike), say: a server keeps
			// listening, and so does the sink.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Sink) session(c *net.TCPConn) {
	if s.silent.Load() {
		io.Copy(io.Discard, c)
		return
	}
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	br := bufio.NewReader(c)
	if s.proxy {
		// The header comes before the banner: the server must read it first.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := proxyproto.Read(br)
		c.SetReadDeadline(time.Time{})
		if err != nil {
			fmt.Fprintf(c, "421 %s bad PROXY header: %v\r\n", s.Name, err)
			return
		}
		if a, ok := h.SourceAddr.(*net.TCPAddr); ok && h.Command.IsProxy() {
			client = a.AddrPort()
		}
	}
	s.mu.Lock()
	s.clients = append(s.clients, client)
	s.mu.Unlock()
	s.Sessions.Add(1)
	fmt.Fprintf(c, "220 %s ESMTP client=%v\r\n", s.Name, client.Addr().Unmap())
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			fmt.Fprintf(c, "250 %s\r\n", s.Name)
		case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), cmd == "RSET", cmd == "NOOP":
			io.WriteString(c, "250 2.0.0 ok\r\n")
		case cmd == "DATA":
			io.WriteString(c, "354 go ahead\r\n")
			n, sum, err := readData(br)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "250 2.0.0 %d bytes sha256=%x\r\n", n, sum)
		case cmd == "QUIT":
			fmt.Fprintf(c, "221 %s bye\r\n", s.Name)
			return
		default:
			io.WriteString(c, "500 5.5.2 unrecognised command\r\n")
		}
	}
}

// readData reads a message up to the "." line, undoing dot-stuffing, and
// returns its length and SHA-256.
func readData(br *bufio.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	var n int64
	mid := false // inside a line longer than the buffer
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return 0, [32]byte{}, err
		}
		if !mid {
			if bytes.Equal(line, []byte(".\r\n")) {
				var sum [32]byte
				h.Sum(sum[:0])
				return n, sum, nil
			}
			line = bytes.TrimPrefix(line, []byte("."))
		}
		mid = err == bufio.ErrBufferFull
		h.Write(line)
		n += int64(len(line))
	}
}
