// Command routeros steers inbound SMTP on MikroTik RouterOS: it compiles
// a steering policy against a country database and either renders it as
// .rsc files to /import, or syncs it to one or more routers over the API.
//
// Usage:
//
//	routeros -policy FILE [-db PATH] -out DIR [-max-size BYTES] [-timeout DUR]
//	routeros -policy FILE [-db PATH] -addr HOST[:PORT][,HOST...] [-user NAME]
//	         [-password-file FILE] [-tls] [-ca FILE] [-mode blue-green|standby|in-place]
//	         [-parallel N] [-verify counts|full|none] [-every DUR] [-dry-run]
//
// The policy is steer's YAML format (steer/testdata/seed.yaml is a
// complete example). The database is anything geo.Open reads (MaxMind DB,
// GeoLite2 CSV directory, range CSV, ...); without -db the command uses
// the first that geo.FindDefault finds (/usr/share/GeoIP/GeoLite2-Country.mmdb,
// /var/lib/GeoIP/..., or inside a geosteer checkout the bundled sample)
// and says on standard error which.
//
// The password comes from -password-file or the ROUTEROS_PASSWORD
// environment variable (the user from -user or ROUTEROS_USER), never from
// the command line, and is never printed. -dry-run prints, per router, the
// adds, removes and rule changes without writing.
//
// Each sync reads every managed entry unless the same process synced the
// router before: with -every the command stays running, re-reads the
// policy and the database each interval and syncs again, and a router's
// next sync confirms what the last one left with a few count queries
// instead (routeros.VerifyCounts; -verify full reads everything every
// time). A failed round is reported and retried at the next interval.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros"
	"github.com/geosteer/geosteer/steer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "routeros:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routeros", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		policy = fs.String("policy", "", "steering policy `file` (YAML; required)")
		db     = fs.String("db", "", "country database `path` (MaxMind DB, GeoLite2 CSV directory, ...); default: the first found in /usr/share/GeoIP, /var/lib/GeoIP, ...")

		out     = fs.String("out", "", "render .rsc files into this `directory`")
		maxSize = fs.Int("max-size", 60000, "largest .rsc file in `bytes` (0: no limit)")
		timeout = fs.Duration("timeout", 0, "with -out: entry timeout (RAM-only entries; each run renders a new generation); 0: permanent. An API sync refuses it")

		addrs    = fs.String("addr", "", "routers to sync, comma-separated `host[:port]`")
		user     = fs.String("user", "", "API user (default $ROUTEROS_USER, else admin)")
		pwFile   = fs.String("password-file", "", "file holding the API password (default $ROUTEROS_PASSWORD)")
		useTLS   = fs.Bool("tls", false, "API-SSL (port 8729), certificate verified")
		caFile   = fs.String("ca", "", "PEM CA certificates for -tls (default: system roots)")
		mode     = fs.String("mode", "blue-green", "list update mode: blue-green, standby or in-place")
		parallel = fs.Int("parallel", 4, "routers synced at once")
		verify   = fs.String("verify", "counts", "what a sync trusts and reads back: counts, full or none")
		every    = fs.Duration("every", 0, "with -addr: sync again at this `interval` until interrupted (0: once)")
		dryRun   = fs.Bool("dry-run", false, "print the changes, do not write")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *policy == "" || (*out == "") == (*addrs == "") || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("need -policy and exactly one of -out or -addr")
	}
	compile := func() (*steer.Plan, error) {
		return steer.CompileFile(*policy, *db, &steer.Options{
			Backends: []steer.Capabilities{steer.RouterOS},
			Logger:   slog.New(slog.NewTextHandler(stderr, nil)),
			Context:  ctx,
		})
	}
	plan, err := compile()
	if err != nil {
		return err
	}

	if *out != "" {
		sc := &routeros.Script{Timeout: *timeout, MaxFileSize: *maxSize}
		files, err := sc.Files(plan)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(*out, f.Name), f.Data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\t%d bytes\n", filepath.Join(*out, f.Name), len(f.Data))
		}
		fmt.Fprintf(stderr, "upload the files (SFTP, /tool fetch) and /import them in order; each is safe alone\n")
		return nil
	}

	name := *user
	if name == "" {
		name = getenv("ROUTEROS_USER")
	}
	if name == "" {
		name = "admin"
	}
	password := getenv("ROUTEROS_PASSWORD")
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return err
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	var tc *tls.Config
	if *useTLS {
		tc = &tls.Config{}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("%s: no PEM certificates", *caFile)
			}
		}
	}
	m := map[string]routeros.Mode{"blue-green": routeros.BlueGreen, "standby": routeros.Standby, "in-place": routeros.InPlace}
	md, ok := m[*mode]
	if !ok {
		return fmt.Errorf("-mode %q: want blue-green, standby or in-place", *mode)
	}
	vm := map[string]routeros.Verify{"counts": routeros.VerifyCounts, "full": routeros.VerifyFull, "none": routeros.VerifyNone}
	vf, ok := vm[*verify]
	if !ok {
		return fmt.Errorf("-verify %q: want counts, full or none", *verify)
	}
	var routers []*routeros.Router
	seen := map[string]bool{}
	for _, ad := range strings.Split(*addrs, ",") {
		ad = strings.TrimSpace(ad)
		// Two Routers on one device would sync it at once, each
		// remembering its own idea of the device.
		if ad == "" || seen[ad] {
			return fmt.Errorf("-addr %q: empty or repeated router %q", *addrs, ad)
		}
		seen[ad] = true
		routers = append(routers, &routeros.Router{Addr: ad, User: name, Password: password, TLS: tc,
			Mode: md, Timeout: *timeout, Verify: vf})
	}
	last := time.Now()
	opts := backend.ApplyOptions{DryRun: *dryRun, Progress: func(done, total int) {
		if time.Since(last) > time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(stderr, "progress: %d/%d commands\n", done, total)
		}
	}}
	for {
		err := syncAll(ctx, routers, plan, opts, *parallel, stdout)
		if *every <= 0 {
			return err
		}
		if err != nil {
			fmt.Fprintln(stderr, "routeros:", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*every):
		}
		if p, err := compile(); err != nil {
			fmt.Fprintln(stderr, "routeros: keeping the last plan:", err)
		} else {
			plan = p
		}
	}
}

// syncAll applies plan to every router and prints a report per router.
func syncAll(ctx context.Context, routers []*routeros.Router, plan *steer.Plan, opts backend.ApplyOptions, parallel int, stdout io.Writer) error {
	var failed int
	for _, r := range routeros.ApplyAll(ctx, routers, plan, opts, parallel) {
		verb := "changed"
		if r.Report.DryRun {
			verb = "would change"
		}
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdout, "%s: error: %v\n", r.Router.Addr, r.Err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s +%d -%d entries, %d rule commands\n", r.Router.Addr, verb,
			r.Report.ElementsAdded, r.Report.ElementsRemoved, r.Report.RulesChanged)
		for _, c := range r.Report.Changes {
			fmt.Fprintf(stdout, "  %s\n", c)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d routers failed", failed, len(routers))
	}
	return nil
}
