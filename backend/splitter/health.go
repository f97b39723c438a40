package splitter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// A target is one server connections are relayed to, kept by address
// across reloads together with its health and counters.
type target struct {
	name     string
	addr     netip.AddrPort
	dialAddr string      // addr.String(), made once
	up       atomic.Bool // optimistic until a check says otherwise

	conns, dialFailures atomic.Uint64
	bytesIn, bytesOut   atomic.Uint64

	stop context.CancelFunc // ends the health checks; nil when none run
}

// setUp records the target's health and logs changes.
func (t *target) setUp(log *slog.Logger, up bool, why error) {
	if t.up.Swap(up) == up {
		return
	}
	if up {
		log.Info("splitter: target up", "target", t.name, "addr", t.addr)
	} else {
		log.Warn("splitter: target down", "target", t.name, "addr", t.addr, "err", why)
	}
}

// healthLoop checks t every interval until ctx ends.
func (s *Splitter) healthLoop(ctx context.Context, t *target) {
	defer s.bg.Done()
	tick := time.NewTicker(s.opts.HealthInterval)
	defer tick.Stop()
	for {
		err := checkSMTP(ctx, t.addr, s.opts.HealthTimeout, s.opts.ProxyProtocol)
		if ctx.Err() != nil {
			return
		}
		if err != nil && localDialErr(err) {
			// Out of file descriptors here: the target may be fine.
			s.log.Error("splitter: health check: out of local resources", "target", t.name, "addr", t.addr, "err", err)
		} else {
			t.setUp(s.log, err == nil, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

var errNoBanner = errors.New("no 220 banner")

// checkSMTP connects to addr and reads the first reply line, which must
// be a 220 greeting; it then says QUIT so the server logs a clean session.
// A server that expects a PROXY header first gets a LOCAL one (v2) or
// "PROXY UNKNOWN" (v1), which tell it to use the connection's own
// addresses, as HAProxy's "check send-proxy" does.
func checkSMTP(ctx context.Context, addr netip.AddrPort, timeout time.Duration, proxy int) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialTCP(ctx, "tcp", netip.AddrPort{}, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	if proxy > 0 {
		h := proxyproto.Header{Version: byte(proxy), Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
		if _, err := h.WriteTo(c); err != nil {
			return err
		}
	}
	var buf [512]byte
	n := 0
	for n < len(buf) && bytes.IndexByte(buf[:n], '\n') < 0 {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			if n == 0 {
				return fmt.Errorf("%w: %w", errNoBanner, err)
			}
			break
		}
	}
	if !bytes.HasPrefix(buf[:n], []byte("220")) {
		line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
		return fmt.Errorf("%w: got %q", errNoBanner, bytes.TrimSpace(line))
	}
	c.Write([]byte("QUIT\r\n"))
	return nil
}
