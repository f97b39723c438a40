// Command routeros steers inbound SMTP on MikroTik RouterOS: it builds the
// seed policy from a country database and either renders it as .rsc files
// to /import, or syncs it to one or more routers over the API.
//
// Usage:
//
//	routeros -db FILE [policy flags] -out DIR [-max-size BYTES] [-timeout DUR]
//	routeros -db FILE [policy flags] -addr HOST[:PORT][,HOST...] [-user NAME]
//	         [-password-file FILE] [-tls] [-ca FILE] [-mode blue-green|standby|in-place]
//	         [-parallel N] [-dry-run]
//
// The password comes from -password-file or the ROUTEROS_PASSWORD
// environment variable (the user from -user or ROUTEROS_USER), never from
// the command line, and is never printed. -dry-run prints the adds,
// removes and rule changes without writing. The database is anything
// geo.Open reads (MaxMind DB, GeoLite2 CSV directory, range CSV, ...).
//
// Until steer's policy loader lands, the policy is [seedPlan]'s: senders
// outside -countries go to -foreign, the others are split between -a and
// -b by source-address half, rotated on the second MX.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/routeros"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
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
		db        = fs.String("db", "", "country database (required)")
		countries = fs.String("countries", "US,CA,GB,AU,NZ,IE", "the \"english\" countries")
		mxs       = fs.String("mx", "203.0.113.1,203.0.113.2", "MX addresses the rules match (IPv4 and IPv6)")
		port      = fs.Uint("port", 25, "SMTP port")
		a         = fs.String("a", "10.0.0.1:25", "server A (address:port)")
		b         = fs.String("b", "10.0.0.2:25", "server B")
		foreign   = fs.String("foreign", "10.0.0.3:25", "the strict server for everyone else")
		a6        = fs.String("a6", "", "server A for IPv6 MX addresses")
		b6        = fs.String("b6", "", "server B for IPv6")
		foreign6  = fs.String("foreign6", "", "strict server for IPv6")

		out     = fs.String("out", "", "render .rsc files into this directory")
		maxSize = fs.Int("max-size", 60000, "largest .rsc file in bytes (0: no limit)")
		timeout = fs.Duration("timeout", 0, "entry timeout (RAM-only entries); 0: permanent")

		addrs    = fs.String("addr", "", "routers to sync, comma-separated host[:port]")
		user     = fs.String("user", "", "API user (default $ROUTEROS_USER, else admin)")
		pwFile   = fs.String("password-file", "", "file holding the API password (default $ROUTEROS_PASSWORD)")
		useTLS   = fs.Bool("tls", false, "API-SSL (port 8729), certificate verified")
		caFile   = fs.String("ca", "", "PEM CA certificates for -tls (default: system roots)")
		mode     = fs.String("mode", "blue-green", "list update mode: blue-green, standby or in-place")
		parallel = fs.Int("parallel", 4, "routers synced at once")
		dryRun   = fs.Bool("dry-run", false, "print the changes, do not write")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" || (*out == "") == (*addrs == "") {
		fs.Usage()
		return errors.New("need -db and exactly one of -out or -addr")
	}
	gdb, err := geo.Open(ctx, *db, nil)
	if err != nil {
		return err
	}
	english, err := gdb.Group(strings.Split(*countries, ",")...)
	if err != nil {
		return err
	}
	sp := seedParams{port: uint16(*port)}
	for _, s := range strings.Split(*mxs, ",") {
		ad, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-mx: %w", err)
		}
		sp.mx = append(sp.mx, ad)
	}
	for _, f := range []struct {
		dst *netip.AddrPort
		v   string
	}{{&sp.a, *a}, {&sp.b, *b}, {&sp.foreign, *foreign}, {&sp.a6, *a6}, {&sp.b6, *b6}, {&sp.foreign6, *foreign6}} {
		if f.v == "" {
			continue
		}
		if *f.dst, err = netip.ParseAddrPort(f.v); err != nil {
			return err
		}
	}
	plan, err := seedPlan(english, sp)
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
	var routers []*routeros.Router
	for _, ad := range strings.Split(*addrs, ",") {
		routers = append(routers, &routeros.Router{Addr: strings.TrimSpace(ad), User: name, Password: password, TLS: tc, Mode: md, Timeout: *timeout})
	}
	last := time.Now()
	opts := backend.ApplyOptions{DryRun: *dryRun, Progress: func(done, total int) {
		if time.Since(last) > time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(stderr, "progress: %d/%d commands\n", done, total)
		}
	}}
	var failed int
	for _, r := range routeros.ApplyAll(ctx, routers, plan, opts, *parallel) {
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

// seedParams are the seed policy's entry points and servers.
type seedParams struct {
	mx               []netip.Addr // MX addresses; IPv6 ones need the *6 servers
	port             uint16
	a, b, foreign    netip.AddrPort
	a6, b6, foreign6 netip.AddrPort
}

// seedPlan builds the seed's policy as a plan, standing in for steer's
// policy loader: for every MX, first "not english" to the strict server
// (one negated rule), then the address space split in halves between A and
// B, the halves swapped on every other MX of a family so that both servers
// get both halves.
func seedPlan(english cidr.Set, sp seedParams) (*steer.Plan, error) {
	p := &steer.Plan{Sets: []steer.Set{{Name: "english", Addrs: english, Comment: "the english countries"}}}
	halves := map[int][2]netipx.IPRange{
		4: {netipx.MustParseIPRange("0.0.0.0-127.255.255.255"), netipx.MustParseIPRange("128.0.0.0-255.255.255.255")},
		6: {netipx.MustParseIPRange("::-7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netipx.MustParseIPRange("8000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
	}
	seen := map[int]int{}
	for i, mx := range sp.mx {
		fam, a, b, f := 4, sp.a, sp.b, sp.foreign
		if mx.Is6() {
			fam, a, b, f = 6, sp.a6, sp.b6, sp.foreign6
		}
		if !a.IsValid() || !b.IsValid() || !f.IsValid() {
			return nil, fmt.Errorf("MX %v: IPv%d servers not given", mx, fam)
		}
		ta, tb := "a", "b"
		if seen[fam]%2 == 1 {
			a, b, ta, tb = b, a, tb, ta
		}
		seen[fam]++
		n := fmt.Sprintf("mx%d", i+1)
		p.Rules = append(p.Rules,
			steer.Rule{Name: "foreign-" + n, Family: fam, DstAddr: mx, DstPort: sp.port, SrcSet: "english", SrcSetNot: true, Target: "foreign", To: f},
			steer.Rule{Name: "split-" + n + "-0", Family: fam, DstAddr: mx, DstPort: sp.port, Src: halves[fam][0], Target: ta, To: a},
			steer.Rule{Name: "split-" + n + "-1", Family: fam, DstAddr: mx, DstPort: sp.port, Src: halves[fam][1], Target: tb, To: b},
		)
	}
	return p, p.Validate()
}
