package routerostest

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzServer feeds arbitrary bytes, after a valid login, to a fresh
// simulator connection and requires that it neither panics nor hangs: the
// reader must end within a bound once the client has gone.
func FuzzServer(f *testing.F) {
	for _, words := range [][]string{
		{"/ip/firewall/address-list/add", "=list=a", "=address=10.0.0.0-10.0.0.255", ".tag=1"},
		{"/ip/firewall/address-list/print", "?list=a", "?comment", "?#|!", "?#0.&", "=.proplist=.id,address"},
		{"/ip/firewall/address-list/remove", "=.id=*1,*2,*ffffffffffffffff"},
		{"/ip/firewall/nat/add", "=chain=dstnat", "=action=dst-nat", "=protocol=tcp", "=dst-port=25", "=place-before=*1"},
		{"/ip/firewall/nat/move", "=numbers=*1,*1", "=destination=0"},
		{"/ipv6/firewall/address-list/add", "=list=v6", "=address=host.example"},
		{"/ip/firewall/address-list/listen", ".tag=l"},
		{"/cancel", "=tag=l"},
		{"/ip/firewall/nat/set", "=.id=*1", "=!protocol=", "=per-connection-classifier=src-address:2/0"},
	} {
		f.Add(appendSentence(nil, words...))
	}
	f.Add([]byte{0xF8})
	f.Add([]byte{0xF0, 0x7F, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		srv, err := NewServer(Options{DNS: nil})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cli, end := net.Pipe()
		srv.connMu.Lock()
		c := srv.startConn(end)
		srv.connMu.Unlock()
		go io.Copy(io.Discard, cli)
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			cli.Write(appendSentence(nil, "/login", "=name=admin", "=password="))
			cli.Write(data)
		}()
		select {
		case <-wrote:
		case <-c.readDone:
		case <-time.After(5 * time.Second):
			t.Fatal("server stopped reading input")
		}
		cli.Close()
		select {
		case <-c.readDone:
		case <-time.After(5 * time.Second):
			t.Fatal("reader did not end after the client closed")
		}
	})
}
