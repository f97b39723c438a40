package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
)

// sink is a fast SMTP sink: banner, EHLO, DATA (discarded, scanning for
// the terminator), QUIT. It is the server behind every peer and the floor.
type sink struct {
	name string
	ln   net.Listener
}

func newSink(name string) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{name, ln}
	go s.serve(ln)
	return s, nil
}

func (s *sink) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

func (s *sink) addr() string { return s.ln.Addr().String() }

// listenAlso serves the sink on host too (a free port; for link mode's
// direct path, from the client's namespace) and returns that address.
func (s *sink) listenAlso(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	go s.serve(ln)
	return ln.Addr().String(), nil
}

func (s *sink) session(c net.Conn) {
	defer c.Close()
	io.WriteString(c, "220 "+s.name+" ESMTP\r\n")
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		switch {
		case bytes.HasPrefix(line, []byte("EHLO")):
			io.WriteString(c, "250 "+s.name+"\r\n")
		case bytes.HasPrefix(line, []byte("DATA")):
			io.WriteString(c, "354 go ahead\r\n")
			if !discardData(br) {
				return
			}
			io.WriteString(c, "250 2.0.0 ok\r\n")
		case bytes.HasPrefix(line, []byte("QUIT")):
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "500 what\r\n")
		}
	}
}

// discardData reads up to and including "\r\n.\r\n" (the message is taken
// to start after a line end).
func discardData(br *bufio.Reader) bool {
	end := []byte("\r\n.\r\n")
	tail := []byte("\r\n")
	for {
		n := br.Buffered()
		if n == 0 {
			if _, err := br.Peek(1); err != nil {
				return false
			}
			n = br.Buffered()
		}
		buf, _ := br.Peek(n)
		// The terminator may straddle the previous chunk's tail.
		joined := append(append([]byte(nil), tail...), buf[:min(len(buf), 4)]...)
		if i := bytes.Index(joined, end); i >= 0 {
			br.Discard(i + len(end) - len(tail))
			return true
		}
		if i := bytes.Index(buf, end); i >= 0 {
			br.Discard(i + len(end))
			return true
		}
		tail = append(tail[:0], buf[max(0, len(buf)-4):]...)
		br.Discard(n)
	}
}
