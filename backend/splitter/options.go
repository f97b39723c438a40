package splitter

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/geosteer/geosteer/steer"
)

// Options configure a [Splitter]. The zero value is usable: no PROXY
// header, no trusted fronts, no connection limits, the default timeouts and
// health checks, and slog.Default for logging.
type Options struct {
	// Listen maps an entry point of the plan to the local address to listen
	// on instead (for tests, demos, and hosts that receive the MX address
	// by NAT). A port of 0 picks a free port; see [Splitter.ListenAddr].
	// Entry points not in the map are listened on as they are.
	Listen map[netip.AddrPort]netip.AddrPort

	// Compile turns a plan into the router that enforces it. Nil means
	// [steer.Plan.Router], the compiled allocation-free form; tests may
	// pass the plan itself ([steer.Plan.Route], the reference semantics).
	Compile func(*steer.Plan) (Router, error)

	// ProxyProtocol is the PROXY protocol version (1 or 2) of the header
	// sent to the target before the client's bytes, so that the server sees
	// the client's address (Postfix: postscreen_upstream_proxy_protocol =
	// haproxy). 0 sends none.
	ProxyProtocol int

	// TrustedFronts are the sources (load balancers) that must begin every
	// connection with a PROXY v1 or v2 header; the splitter routes on the
	// client address the header carries and passes that address on. A
	// trusted front's connection without a valid header is closed. Headers
	// from anyone else are not interpreted: their bytes are relayed like
	// any other and the server refuses them as a bad command.
	TrustedFronts []netip.Prefix
	// HeaderTimeout bounds the wait for a trusted front's header, which
	// may arrive in pieces (both engines). Default 5s.
	HeaderTimeout time.Duration

	// DialTimeout bounds each connection attempt to a target. Default 5s.
	DialTimeout time.Duration
	// IdleTimeout closes a session with no byte in either direction for
	// this long. Default 5 minutes (RFC 5321's server timeout); negative
	// disables. While it is on, TCP keep-alive is off on both connections
	// of a session (dead peers are reaped by the timeout anyway); with it
	// disabled, keep-alive runs with Go's defaults.
	//
	// Progress is seen when a read or write call returns. The event loop
	// sees each partial write; the goroutine engine's relay (io.Copy,
	// which splices through a pipe of up to 1 MiB) sees a bulk transfer
	// only between its pipe's fills, so a reader that takes longer than
	// IdleTimeout to drain one pipe (slower than about 3.4 KB/s at the
	// default) is cut there while bytes still move (TestSlowReaderIdle).
	IdleTimeout time.Duration
	// SessionTimeout closes any session this old. Default 1 hour; negative
	// disables.
	SessionTimeout time.Duration

	// MaxConns caps the concurrent connections, tarpitted ones included;
	// 0 means no cap.
	MaxConns int
	// MaxConnsPerSource caps the concurrent connections from one source
	// prefix (/SourcePrefix4 for IPv4, default /24; /SourcePrefix6 for
	// IPv6, default /64); 0 means no cap. Prefixes are counted in 65,536
	// hashed buckets: two busy prefixes sharing a bucket share the cap,
	// so the cap can bite early, never late.
	MaxConnsPerSource int
	SourcePrefix4     int
	SourcePrefix6     int

	// Tarpit delays the relay of every connection steered to the named
	// target by the given time (the seed's "sleep 20" on the strict path).
	// A sleeping connection holds no goroutine, only a runtime timer.
	Tarpit map[string]time.Duration

	// HealthInterval is the period of the active health checks (connect to
	// each target and read its 220 banner). Default 10s; negative disables
	// the checks, and then a failed dial does not mark a target down.
	HealthInterval time.Duration
	// HealthTimeout bounds one check. Default 5s.
	HealthTimeout time.Duration

	// Engine is how connections are served: [EngineAuto] (the zero value)
	// picks the event loop on Linux and goroutines elsewhere.
	Engine Engine

	// Logger receives connection events (Debug), failovers, health changes
	// and rejections (Info and Warn), and accept errors (Error). Nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.HeaderTimeout, 5*time.Second)
	def(&o.DialTimeout, 5*time.Second)
	def(&o.IdleTimeout, 5*time.Minute)
	def(&o.SessionTimeout, time.Hour)
	def(&o.HealthInterval, 10*time.Second)
	def(&o.HealthTimeout, 5*time.Second)
	if o.SourcePrefix4 <= 0 || o.SourcePrefix4 > 32 {
		o.SourcePrefix4 = 24
	}
	if o.SourcePrefix6 <= 0 || o.SourcePrefix6 > 128 {
		o.SourcePrefix6 = 64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// keepAlive is the TCP keep-alive period of both connections of a session:
// off (-1) when the idle timeout reaps dead peers anyway, saving four
// setsockopt calls per connection; else Go's default.
func (o Options) keepAlive() time.Duration {
	if o.IdleTimeout > 0 {
		return -1
	}
	return 0
}
