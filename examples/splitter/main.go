// Command splitter runs geosteer's in-process SMTP connection splitter.
//
// With no arguments it runs a self-contained demo on loopback and exits:
// the demo policy (testdata/demo.yaml, embedded: the seed's setup with a
// sample "english" list), three SMTP sinks standing in for its targets,
// and demo senders bound to addresses across 127.0.0.0/8 and ::1; it
// prints which sink each sender reached, then shows a failover.
//
//	go run ./examples/splitter
//
// Otherwise it enforces a steering policy until interrupted:
//
//	splitter -policy FILE [-db PATH] [-listen ENTRY=LOCAL ...] [-tarpit TARGET=DUR ...]
//	         [-proxy 1|2] [-trusted PREFIX ...] [-max-conns N] [-max-per-source N]
//	         [-idle DUR] [-session DUR] [-health DUR] [-drain DUR]
//	         [-metrics ADDR:PORT] [-engine auto|goroutine|eventloop] [-render] [-v]
//
// The policy is steer's YAML format (steer/testdata/seed.yaml is a
// complete example); the splitter listens on its entry points' addresses
// and ports, or where -listen says (such as -listen
// 203.0.113.1:25=127.0.0.1:2525 behind a NAT). The database is anything
// geo.Open reads (MaxMind DB, GeoLite2 CSV directory, range CSV, ...);
// without -db the command uses the first that geo.FindDefault finds
// (/usr/share/GeoIP/GeoLite2-Country.mmdb, /var/lib/GeoIP/..., or inside
// a geosteer checkout the bundled sample) and says on standard error
// which. -tarpit delays the relay to a target (the seed's strict server:
// -tarpit foreign=20s). -render prints the plan as the splitter would
// enforce it, and exits.
//
// SIGHUP re-reads the policy and the database and swaps the new plan in
// without refusing a connection, logging what changed (steer.Diff); the
// policy's safety.max_shrink is checked against the plan in force, and on
// any error the plan in force stays. SIGINT or SIGTERM drains the
// connections for up to -drain, then exits.
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
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/splitter"
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

// strs is a repeatable string flag.
type strs []string

func (s *strs) String() string     { return strings.Join(*s, ",") }
func (s *strs) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, args []string, hup <-chan os.Signal, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return demo(ctx, stdout)
	}
	fs := flag.NewFlagSet("splitter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listens, tarpits, trusted strs
	policy := fs.String("policy", "", "steering policy `file` (YAML; required)")
	db := fs.String("db", "", "country database `path` (MaxMind DB, GeoLite2 CSV directory, ...); default: the first found in /usr/share/GeoIP, /var/lib/GeoIP, ...")
	fs.Var(&listens, "listen", "listen for an entry point on a local address: `entry=local`, both addr:port (repeatable)")
	fs.Var(&tarpits, "tarpit", "delay the relay to a target: `target=duration` (repeatable)")
	proxy := fs.Int("proxy", 0, "PROXY protocol `version` (1 or 2) sent to the targets; 0 for none")
	fs.Var(&trusted, "trusted", "`prefix` of trusted fronts that send PROXY headers (repeatable)")
	maxConns := fs.Int("max-conns", 0, "maximum concurrent connections (0: no cap)")
	perSource := fs.Int("max-per-source", 0, "maximum concurrent connections per /24 or /64 (0: no cap)")
	idle := fs.Duration("idle", 5*time.Minute, "idle timeout")
	session := fs.Duration("session", time.Hour, "session timeout")
	health := fs.Duration("health", 10*time.Second, "health check interval (negative: none)")
	metrics := fs.String("metrics", "", "serve /metrics (Prometheus) and /debug/vars (expvar) on `addr:port`")
	drain := fs.Duration("drain", 30*time.Second, "how long shutdown waits for connections")
	var engine splitter.Engine
	fs.TextVar(&engine, "engine", splitter.EngineAuto, "how connections are served: auto, goroutine or eventloop (Linux)")
	render := fs.Bool("render", false, "print the plan as the splitter would enforce it, and exit")
	verbose := fs.Bool("v", false, "log every connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *policy == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("need -policy and no arguments (run without any for the demo)")
	}
	opts := splitter.Options{
		Listen: map[netip.AddrPort]netip.AddrPort{}, Tarpit: map[string]time.Duration{}, ProxyProtocol: *proxy,
		MaxConns: *maxConns, MaxConnsPerSource: *perSource, IdleTimeout: *idle, SessionTimeout: *session,
		HealthInterval: *health, Engine: engine,
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
	for _, t := range tarpits {
		name, d, ok := strings.Cut(t, "=")
		dur, err := time.ParseDuration(d)
		if !ok || err != nil || dur < 0 {
			return fmt.Errorf("-tarpit %q: want target=duration, such as foreign=20s", t)
		}
		opts.Tarpit[name] = dur
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts.Logger = log

	// load compiles the policy with the database as they are now; prev,
	// the plan in force, is what safety.max_shrink measures against.
	load := func(prev *steer.Plan) (*steer.Plan, error) {
		plan, err := steer.CompileFile(*policy, *db, &steer.Options{
			Backends: []steer.Capabilities{steer.Splitter},
			Previous: prev,
			Logger:   log,
			Context:  ctx,
		})
		if err != nil {
			return nil, err
		}
		return plan, checkOptions(plan, opts)
	}
	plan, err := load(nil)
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
	// Loading and compiling a big policy leaves tens of MB of garbage
	// around a live heap of a few; give it back to the OS now rather than
	// minutes from now (the next forced GC): one collection per load.
	debug.FreeOSMemory()
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
			next, err := load(plan)
			if err == nil {
				_, err = s.Apply(ctx, next, backend.ApplyOptions{})
			}
			if err != nil {
				log.Error("reload failed; the plan in force stays", "err", err)
				continue
			}
			log.Info("reloaded", "policy", *policy, "changes", steer.Diff(plan, next).String())
			plan = next
			debug.FreeOSMemory()
		case <-ctx.Done():
			log.Info("shutting down", "drain", *drain)
			sctx, cancel := context.WithTimeout(context.Background(), *drain)
			defer cancel()
			return s.Shutdown(sctx)
		}
	}
}

// checkOptions refuses command-line options that name what the plan does
// not have: a -listen entry point or a -tarpit target (a typo would
// otherwise be silently ignored).
func checkOptions(plan *steer.Plan, opts splitter.Options) error {
	eps := map[netip.AddrPort]bool{}
	targets := map[string]bool{}
	for _, r := range plan.Rules {
		eps[netip.AddrPortFrom(r.DstAddr, r.DstPort)] = true
		targets[r.Target] = true
	}
	var errs []error
	for ep := range opts.Listen {
		if !eps[ep] {
			errs = append(errs, fmt.Errorf("-listen %v: the policy has no such entry point (address and port)", ep))
		}
	}
	for t := range opts.Tarpit {
		if !targets[t] {
			errs = append(errs, fmt.Errorf("-tarpit %s: no rule of the policy sends to a target of that name", t))
		}
	}
	return errors.Join(errs...)
}
