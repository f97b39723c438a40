package routerostest

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3"
)

func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client dials srv with a deadline (go-routeros v3.0.1 does not bound /login
// with a context) and logs in as admin with an empty password.
func client(t testing.TB, srv *Server) *routeros.Client {
	t.Helper()
	c, err := clientAs(t, srv, "admin", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func clientAs(t testing.TB, srv *Server, user, pw string) (*routeros.Client, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c, err := routeros.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.Login(user, pw)
}

// run runs a command that must succeed.
func run(t testing.TB, c *routeros.Client, words ...string) *routeros.Reply {
	t.Helper()
	r, err := c.RunArgs(words)
	if err != nil {
		t.Fatalf("%q: %v", words, err)
	}
	return r
}

// trapOf runs a command that must trap and returns the trap message.
func trapOf(t testing.TB, c *routeros.Client, words ...string) string {
	t.Helper()
	_, err := c.RunArgs(words)
	var de *routeros.DeviceError
	if !errors.As(err, &de) {
		t.Fatalf("%q: err %v, want a trap", words, err)
	}
	return de.Sentence.Map["message"]
}

// raw is a connection speaking the wire protocol directly, for what
// go-routeros cannot express or parse (!fatal reasons, !empty, pipelining).
type raw struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, srv *Server) *raw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *raw) send(words ...string) {
	r.t.Helper()
	if _, err := r.nc.Write(appendSentence(nil, words...)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) read() []string {
	r.t.Helper()
	w, err := readSentence(r.br)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return w
}

// until reads sentences up to and including the next !done (or !fatal),
// each rendered as space-joined words.
func (r *raw) until() []string {
	r.t.Helper()
	var out []string
	for {
		w := r.read()
		out = append(out, strings.Join(w, " "))
		if w[0] == "!done" || w[0] == "!fatal" {
			return out
		}
	}
}

func (r *raw) login() {
	r.t.Helper()
	r.send("/login", "=name=admin", "=password=")
	if got := r.until(); len(got) != 1 || got[0] != "!done" {
		r.t.Fatalf("login: %q", got)
	}
}
