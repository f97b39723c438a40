package routeros

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-routeros/routeros/v3/proto"
)

// conn is one API session with tagged commands multiplexed over it. It
// replaces go-routeros' Async mode, which registers a tag only after sending
// (a fast reply is lost) and lets one cancelled request kill the shared
// reader: here a command is registered before its first byte is written,
// one reader goroutine owns the socket, and the only way a command fails
// without a reply is the death of the whole connection.
//
// Every wait is bounded: the read deadline runs while any command is
// outstanding and is pushed back by each reply sentence (a router streaming
// a 100k-entry print is not idle), writes carry a deadline, and cancelling
// the context passed to dial kills the connection at once.
type conn struct {
	nc      net.Conn
	r       *sentenceReader
	timeout time.Duration

	wmu sync.Mutex
	bw  *bufio.Writer
	buf []byte

	mu       sync.Mutex
	calls    map[string]*call
	next     uint64
	err      error // sticky: set once, the connection is dead
	extended time.Time
	dead     chan struct{}
	stop     func() bool // unregisters the context watchdog

	sent int // commands written, for reports
}

// A call is one outstanding command.
type call struct {
	onRe  func(*proto.Sentence) // runs on the reader goroutine
	traps []string
	done  *proto.Sentence
	err   error       // the connection died first
	fin   func(*call) // runs on the reader goroutine, or with err set
}

// errTimeout is returned when the router stays silent too long.
var errTimeout = errors.New("router did not answer in time")

// dialConfig is what dial needs.
type dialConfig struct {
	addr        string
	user        string
	password    string
	tls         *tls.Config
	dialTimeout time.Duration
	ioTimeout   time.Duration
}

// dial connects, starts the reader and logs in, all bounded by the
// timeouts and ctx.
func dial(ctx context.Context, dc dialConfig) (*conn, error) {
	addr := dc.addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "8728"
		if dc.tls != nil {
			port = "8729"
		}
		addr = net.JoinHostPort(addr, port)
	}
	d := net.Dialer{Timeout: dc.dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("routeros: %w", err)
	}
	if dc.tls != nil {
		cfg := dc.tls.Clone()
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		tc.SetDeadline(time.Now().Add(dc.dialTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("routeros: %s: TLS: %w", addr, err)
		}
		tc.SetDeadline(time.Time{})
		nc = tc
	}
	c := &conn{
		nc:      nc,
		timeout: dc.ioTimeout,
		calls:   map[string]*call{},
		dead:    make(chan struct{}),
	}
	c.r = &sentenceReader{br: bufio.NewReaderSize(nc, 64<<10)}
	c.bw = bufio.NewWriterSize(deadlineWriter{c}, 64<<10)
	c.stop = context.AfterFunc(ctx, func() { c.fail(ctx.Err()) })
	go c.readLoop()
	if err := c.login(dc.user, dc.password); err != nil {
		c.close()
		return nil, fmt.Errorf("routeros: %s: %w", addr, err)
	}
	return c, nil
}

// deadlineWriter bounds every write to the socket.
type deadlineWriter struct{ c *conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.nc.SetWriteDeadline(time.Now().Add(w.c.timeout))
	n, err := w.c.nc.Write(p)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errTimeout
		}
		w.c.fail(err)
		err = w.c.failure()
	}
	return n, err
}

// login authenticates; the password is never part of an error or a log.
func (c *conn) login(user, password string) error {
	res, err := c.run("/login", "=name="+user, "=password="+password)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if len(res.traps) > 0 {
		return fmt.Errorf("login as %q: %s", user, res.traps[0])
	}
	// Before 6.43 the router answers with a challenge instead.
	if ch, ok := res.done.Map["ret"]; ok {
		b, err := hex.DecodeString(ch)
		if err != nil {
			return errors.New("login: invalid challenge")
		}
		h := md5.New()
		h.Write([]byte{0})
		h.Write([]byte(password))
		h.Write(b)
		res, err = c.run("/login", "=name="+user, "=response=00"+hex.EncodeToString(h.Sum(nil)))
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		if len(res.traps) > 0 {
			return fmt.Errorf("login as %q: %s", user, res.traps[0])
		}
	}
	return nil
}

// fail kills the connection with err, once.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.dead)
	c.mu.Unlock()
	c.nc.SetDeadline(time.Unix(1, 0)) // unblocks the reader and writers now
	c.nc.Close()
}

func (c *conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *conn) close() {
	c.stop()
	c.fail(net.ErrClosed)
}

// readLoop owns the socket's read side until the connection dies, then
// fails every outstanding call.
func (c *conn) readLoop() {
	for {
		sen, err := c.r.ReadSentence()
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				err = errTimeout
			}
			c.fail(err)
			c.mu.Lock()
			calls := c.calls
			c.calls = nil
			err = c.err
			c.mu.Unlock()
			for _, cl := range calls {
				cl.err = err
				cl.fin(cl)
			}
			return
		}
		c.mu.Lock()
		cl := c.calls[sen.Tag]
		if now := time.Now(); len(c.calls) > 0 && now.Sub(c.extended) > c.timeout/16 {
			c.extended = now
			c.nc.SetReadDeadline(now.Add(c.timeout))
		}
		if cl != nil && sen.Word == "!done" {
			delete(c.calls, sen.Tag)
			if len(c.calls) == 0 {
				c.nc.SetReadDeadline(time.Time{})
			}
		}
		c.mu.Unlock()
		if cl == nil {
			continue // untagged or unknown: not ours to answer
		}
		switch sen.Word {
		case "!re":
			if cl.onRe != nil {
				cl.onRe(sen)
			}
		case "!trap":
			cl.traps = append(cl.traps, sen.Map["message"])
		case "!done":
			cl.done = sen
			cl.fin(cl)
		}
	}
}

// send registers cl under a fresh tag, then writes the command into the
// buffer. The caller flushes. Once registered, cl is finished by the
// reader even if writing fails (the failure kills the connection), so
// registered tells the caller whether cl.fin will run.
func (c *conn) send(cl *call, words []string) (registered bool, err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return false, c.err
	}
	c.next++
	tag := strconv.FormatUint(c.next, 36)
	if len(c.calls) == 0 {
		c.extended = time.Now()
		c.nc.SetReadDeadline(c.extended.Add(c.timeout))
	}
	c.calls[tag] = cl
	c.mu.Unlock()

	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.buf[:0]
	for _, w := range words {
		b = appendWord(b, w)
	}
	b = appendWord(b, ".tag="+tag)
	b = append(b, 0)
	c.buf = b
	c.sent++
	if _, err := c.bw.Write(b); err != nil {
		return true, c.failure()
	}
	return true, nil
}

func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.bw.Flush(); err != nil {
		return c.failure()
	}
	return nil
}

// A query is one command of a batch, with what to do with its reply.
type query struct {
	words []string
	onRe  func(*proto.Sentence) // each row, on the reader goroutine
	done  func(*result) error   // after the reply, unless it trapped
}

// batch pipelines the queries; a trap is an error.
func (c *conn) batch(qs []query, window int) error {
	return c.pipelineRe(len(qs), window, func(i int) []string { return qs[i].words }, func(i int, s *proto.Sentence) {
		if qs[i].onRe != nil {
			qs[i].onRe(s)
		}
	}, func(i int, _ []string, r *result) error {
		if err := r.trapErr(qs[i].words); err != nil {
			return err
		}
		if qs[i].done != nil {
			return qs[i].done(r)
		}
		return nil
	})
}

// result is a finished command.
type result struct {
	traps []string
	done  *proto.Sentence
}

// trapErr turns a command's traps into an error.
func (r *result) trapErr(words []string) error {
	if len(r.traps) == 0 {
		return nil
	}
	return &TrapError{Command: words[0], Message: strings.Join(r.traps, "; ")}
}

// A TrapError is a command the router refused.
type TrapError struct {
	Command string // the command word
	Message string
}

func (e *TrapError) Error() string { return fmt.Sprintf("%s: %s", e.Command, e.Message) }

// run sends one command and waits for its reply.
func (c *conn) run(words ...string) (*result, error) {
	return c.runRe(nil, words...)
}

// runRe is run with a callback for each !re sentence.
func (c *conn) runRe(onRe func(*proto.Sentence), words ...string) (*result, error) {
	ch := make(chan *call, 1)
	cl := &call{onRe: onRe, fin: func(cl *call) { ch <- cl }}
	if registered, err := c.send(cl, words); err != nil {
		if !registered {
			return nil, err
		}
	} else if err := c.flush(); err != nil {
		return nil, err
	}
	cl = <-ch
	if cl.err != nil {
		return nil, cl.err
	}
	return &result{traps: cl.traps, done: cl.done}, nil
}

// pipeline sends n commands with at most window in flight, calling done
// for each reply (with the command's words) in reply order, from the
// reader goroutine (so done must be quick). cmd is called in order, from
// the caller's goroutine, so it may pull from an iterator. pipeline stops
// at the first error from the connection or done.
func (c *conn) pipeline(n, window int, cmd func(i int) []string, done func(i int, words []string, r *result) error) error {
	return c.pipelineRe(n, window, cmd, nil, done)
}

// pipelineRe is pipeline with onRe(i, row) for each row (!re) of command
// i, called from the reader goroutine before done(i, ...).
func (c *conn) pipelineRe(n, window int, cmd func(i int) []string, onRe func(i int, s *proto.Sentence), done func(i int, words []string, r *result) error) error {
	sem := make(chan struct{}, window)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	setErr := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	getErr := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		default:
			// The window is full: let the router see what is queued.
			if err := c.flush(); err != nil {
				setErr(err)
				break
			}
			select {
			case sem <- struct{}{}:
			case <-c.dead:
				setErr(c.failure())
			}
		}
		if getErr() != nil {
			break
		}
		words := cmd(i)
		cl := &call{fin: func(cl *call) {
			defer func() { <-sem; wg.Done() }()
			if cl.err != nil {
				setErr(cl.err)
				return
			}
			if err := done(i, words, &result{traps: cl.traps, done: cl.done}); err != nil {
				setErr(err)
			}
		}}
		if onRe != nil {
			cl.onRe = func(s *proto.Sentence) { onRe(i, s) }
		}
		wg.Add(1)
		if registered, err := c.send(cl, words); err != nil {
			if !registered {
				wg.Done()
				<-sem
			}
			setErr(err)
			break
		}
	}
	if err := c.flush(); err != nil {
		setErr(err)
	}
	wg.Wait()
	return getErr()
}
