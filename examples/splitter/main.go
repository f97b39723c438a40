// Command splitter runs geosteer's in-process SMTP connection splitter.
//
// With no arguments it runs a self-contained demo on loopback and exits:
// three SMTP sinks (a, b and strict), the seed's policy with a sample
// "english" set, and demo senders bound to addresses across 127.0.0.0/8 and
// ::1; it prints which sink each sender reached, then shows a failover.
//
//	go run ./examples/splitter
//
// Otherwise it enforces the seed's policy (see seedPlan) until interrupted:
//
//	splitter -mx 192.0.2.1:25 -mx 192.0.2.2:25 \
//	    -a 10.0.0.1:25 -b 10.0.0.2:25 -strict 10.0.0.3:25 \
//	    -english english.txt [-proxy 2] [-tarpit 20s] [-metrics 127.0.0.1:9125] \
//	    [-listen 192.0.2.1:25=127.0.0.1:2525 ...]
//
// SIGHUP re-reads the -english lists and swaps the new plan in without
// refusing a connection; SIGINT or SIGTERM drains the connections for up
// to -drain, then exits. Until steer's policy loader lands, the policy is
// built from the flags; -render prints it as the splitter enforces it.
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/splitter"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], hup, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "splitter:", err)
		os.Exit(1)
	}
}

// addrs is a repeatable address:port flag.
type addrs []netip.AddrPort

func (a *addrs) String() string { return fmt.Sprint(*a) }
func (a *addrs) Set(s string) error {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return err
	}
	*a = append(*a, ap)
	return nil
}

type strs []string

func (s *strs) String() string     { return strings.Join(*s, ",") }
func (s *strs) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, args []string, hup <-chan os.Signal, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return demo(stdout)
	}
	fs := flag.NewFlagSet("splitter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mxs, as, bs, stricts addrs
	var english, listens, trusted strs
	fs.Var(&mxs, "mx", "entry point `addr:port` (repeatable)")
	fs.Var(&as, "a", "server A `addr:port`, one per address family (repeatable)")
	fs.Var(&bs, "b", "server B `addr:port`, one per address family")
	fs.Var(&stricts, "strict", "strict server `addr:port` for non-english senders, one per address family")
	fs.Var(&english, "english", "prefix list `file` of the english set (repeatable)")
	split4 := fs.String("split4", "128.0.0.0", "first IPv4 `address` of the upper half")
	split6 := fs.String("split6", "8000::", "first IPv6 `address` of the upper half")
	fs.Var(&listens, "listen", "listen for entry point on a local address: `entry=local` (repeatable)")
	proxy := fs.Int("proxy", 0, "PROXY protocol `version` (1 or 2) sent to the servers; 0 for none")
	fs.Var(&trusted, "trusted", "`prefix` of trusted fronts that send PROXY headers (repeatable)")
	tarpit := fs.Duration("tarpit", 0, "delay before relaying to the strict server")
	maxConns := fs.Int("max-conns", 0, "maximum concurrent connections (0: no cap)")
	perSource := fs.Int("max-per-source", 0, "maximum concurrent connections per /24 or /64 (0: no cap)")
	idle := fs.Duration("idle", 5*time.Minute, "idle timeout")
	session := fs.Duration("session", time.Hour, "session timeout")
	health := fs.Duration("health", 10*time.Second, "health check interval (negative: none)")
	metrics := fs.String("metrics", "", "serve /metrics (Prometheus) and /debug/vars (expvar) on `addr:port`")
	drain := fs.Duration("drain", 30*time.Second, "how long shutdown waits for connections")
	render := fs.Bool("render", false, "print the plan as the splitter would enforce it, and exit")
	verbose := fs.Bool("v", false, "log every connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (policy files come with steer's loader)", fs.Args())
	}
	if len(mxs) == 0 {
		return errors.New("no -mx entry point given")
	}
	fams := map[int]servers{}
	for _, x := range []struct {
		name string
		aps  addrs
		set  func(*servers, netip.AddrPort)
	}{
		{"-a", as, func(s *servers, a netip.AddrPort) { s.a = a }},
		{"-b", bs, func(s *servers, a netip.AddrPort) { s.b = a }},
		{"-strict", stricts, func(s *servers, a netip.AddrPort) { s.strict = a }},
	} {
		for _, ap := range x.aps {
			fam := 4
			if !ap.Addr().Is4() {
				fam = 6
			}
			sv := fams[fam]
			x.set(&sv, ap)
			fams[fam] = sv
		}
	}
	splits := map[int]netip.Addr{}
	for fam, s := range map[int]string{4: *split4, 6: *split6} {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("-split%d: %w", fam, err)
		}
		splits[fam] = a
	}
	opts := splitter.Options{
		Listen: map[netip.AddrPort]netip.AddrPort{}, ProxyProtocol: *proxy,
		MaxConns: *maxConns, MaxConnsPerSource: *perSource, IdleTimeout: *idle, SessionTimeout: *session,
		HealthInterval: *health, Tarpit: map[string]time.Duration{"strict": *tarpit},
	}
	for _, l := range listens {
		e, loc, ok := strings.Cut(l, "=")
		ep, err1 := netip.ParseAddrPort(e)
		lp, err2 := netip.ParseAddrPort(loc)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("-listen %q: want entry=local, both addr:port", l)
		}
		opts.Listen[ep] = lp
	}
	for _, t := range trusted {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return fmt.Errorf("-trusted: %w", err)
		}
		opts.TrustedFronts = append(opts.TrustedFronts, p)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	load := func() (*steer.Plan, error) {
		var b cidr.Builder
		for _, name := range english {
			f, err := os.Open(name)
			if err != nil {
				return nil, err
			}
			err = b.ReadList(name, f, cidr.ParseOptions{})
			f.Close()
			if err != nil {
				return nil, err
			}
		}
		set, err := b.Set()
		if err != nil {
			return nil, err
		}
		return seedPlan(mxs, set, fams, splits)
	}
	plan, err := load()
	if err != nil {
		return err
	}
	if *render {
		return splitter.Render(stdout, plan, opts)
	}
	s, err := splitter.New(plan, opts)
	if err != nil {
		return err
	}
	if *metrics != "" {
		expvar.Publish("splitter", s.Var())
		mux := http.NewServeMux()
		mux.Handle("/metrics", s.MetricsHandler())
		mux.Handle("/debug/vars", expvar.Handler())
		ln, err := net.Listen("tcp", *metrics)
		if err != nil {
			s.Close()
			return err
		}
		defer ln.Close()
		go http.Serve(ln, mux)
	}
	for {
		select {
		case <-hup:
			plan, err := load()
			if err == nil {
				_, err = s.Apply(ctx, plan, backend.ApplyOptions{})
			}
			if err != nil {
				opts.Logger.Error("reload failed; the previous plan stays in force", "err", err)
			}
		case <-ctx.Done():
			opts.Logger.Info("shutting down", "drain", *drain)
			sctx, cancel := context.WithTimeout(context.Background(), *drain)
			defer cancel()
			return s.Shutdown(sctx)
		}
	}
}
