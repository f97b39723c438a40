package main

import (
	"io"
	"net"
)

// goProxy is the reference a Go programmer writes first: a goroutine per
// connection, a dial with Go's defaults, io.Copy each way (which splices
// between TCP connections on Linux), half-close passed on. No routing, no
// timeouts, no limits.
func goProxy(listen, target string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer s.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(s, c)
				s.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			io.Copy(c, s)
			c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}
