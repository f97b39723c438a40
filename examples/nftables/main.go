// Command nftables renders or applies the seed steering policy with the
// nftables backend.
//
// Usage:
//
//	nftables -db FILE [-english US,CA,GB,AU,NZ,IE] [-mx 203.0.113.1,203.0.113.2]
//	         -targets A,B,FOREIGN[,A6,B6,FOREIGN6] [-table geosteer] [-apply | -dry-run]
//
// It loads the country database, builds the seed plan (seedPlan below) and
// writes the nft -f script to standard output; with -dry-run it prints what
// an apply would change, with -apply (root) it applies the plan over netlink
// and prints what changed.
//
// Until steer's policy loader lands the plan is built here from flags; the
// command will then take a policy file instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/nftables"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "nftables:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nftables", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "country database (MaxMind DB, GeoLite2 CSV directory, ...)")
	english := fs.String("english", "US,CA,GB,AU,NZ,IE", "comma-separated country codes of the \"english\" set")
	mx := fs.String("mx", "203.0.113.1,203.0.113.2", "comma-separated MX addresses (IPv4 and/or IPv6)")
	targets := fs.String("targets", "", "servers a, b and foreign as addr:port, per family: A,B,FOREIGN[,A6,B6,FOREIGN6]")
	table := fs.String("table", nftables.DefaultTable, "the inet table the backend owns")
	apply := fs.Bool("apply", false, "apply the plan over netlink (root)")
	dry := fs.Bool("dry-run", false, "print what -apply would change")
	verbose := fs.Bool("v", false, "log timings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" || *targets == "" {
		fs.Usage()
		return errors.New("-db and -targets are required")
	}
	d, err := geo.Open(ctx, *db, nil)
	if err != nil {
		return err
	}
	set, err := d.Group(strings.Split(*english, ",")...)
	if err != nil {
		return err
	}
	p, err := seedPlan(set, *mx, *targets)
	if err != nil {
		return err
	}
	be := &nftables.Backend{Table: *table}
	if *verbose {
		be.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if !*apply && !*dry {
		return be.Render(stdout, p)
	}
	rep, err := be.Apply(ctx, p, backend.ApplyOptions{DryRun: *dry})
	if err != nil {
		return err
	}
	if !rep.Changed() {
		fmt.Fprintln(stdout, "no changes")
	}
	for _, c := range rep.Changes {
		fmt.Fprintln(stdout, c)
	}
	return nil
}

// seedPlan is the seed policy as a plan: connections to each MX from
// outside english go to the foreign server; the rest are split by source
// half, 0.0.0.0/1 (::/1) to a and 128.0.0.0/1 (8000::/1) to b on the first
// MX, rotated on the others. targets lists a, b and foreign per family, in
// that order; each MX needs the three servers of its family.
func seedPlan(english cidr.Set, mxList, targets string) (*steer.Plan, error) {
	srv := map[int][]netip.AddrPort{}
	for _, s := range strings.Split(targets, ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-targets: %w", err)
		}
		fam := 6
		if ap.Addr().Is4() {
			fam = 4
		}
		srv[fam] = append(srv[fam], ap)
	}
	halves := map[int][2]netipx.IPRange{
		4: {netipx.MustParseIPRange("0.0.0.0-127.255.255.255"), netipx.MustParseIPRange("128.0.0.0-255.255.255.255")},
		6: {netipx.MustParseIPRange("::-7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netipx.MustParseIPRange("8000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
	}
	names := []string{"a", "b", "foreign"}
	var foreign, split []steer.Rule
	for i, s := range strings.Split(mxList, ",") {
		mx, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-mx: %w", err)
		}
		fam := 6
		if mx.Is4() {
			fam = 4
		}
		if len(srv[fam]) != 3 {
			return nil, fmt.Errorf("-mx %v: -targets must name three IPv%d servers (a, b, foreign), has %d", mx, fam, len(srv[fam]))
		}
		foreign = append(foreign, steer.Rule{Name: fmt.Sprintf("foreign-mx%d", i+1), Family: fam, DstAddr: mx, DstPort: 25,
			SrcSet: "english", SrcSetNot: true, Target: names[2], To: srv[fam][2]})
		for h, r := range halves[fam] {
			t := (h + i) % 2
			split = append(split, steer.Rule{Name: fmt.Sprintf("split-mx%d-%d", i+1, h), Family: fam, DstAddr: mx, DstPort: 25,
				Src: r, Target: names[t], To: srv[fam][t]})
		}
	}
	p := &steer.Plan{
		Sets:  []steer.Set{{Name: "english", Addrs: english, Comment: "senders steered by the split"}},
		Rules: append(foreign, split...), // the negated rule above the split
	}
	return p, p.Validate()
}
