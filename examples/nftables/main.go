// Command nftables renders or applies a steering policy with the nftables
// backend.
//
// Usage:
//
//	nftables -policy FILE [-db PATH] [-table NAME] [-netns NAME] [-apply | -dry-run] [-v]
//
// It compiles the policy (steer's YAML format; steer/testdata/seed.yaml is
// a complete example) against the country database and writes the nft -f
// script to standard output. With -dry-run it prints what an apply would
// change in the kernel's table; with -apply (root, or CAP_NET_ADMIN) it
// applies the plan over netlink in one transaction and prints what
// changed. -netns works in the named network namespace (ip netns).
//
// The database is anything geo.Open reads (MaxMind DB, GeoLite2 CSV
// directory, range CSV, ...). Without -db the command uses the first that
// geo.FindDefault finds (/usr/share/GeoIP/GeoLite2-Country.mmdb,
// /var/lib/GeoIP/..., or inside a geosteer checkout the bundled sample)
// and says on standard error which.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/backend/nftables"
	"github.com/geosteer/geosteer/steer"
	"golang.org/x/sys/unix"
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
	policy := fs.String("policy", "", "steering policy `file` (YAML; required)")
	db := fs.String("db", "", "country database `path` (MaxMind DB, GeoLite2 CSV directory, ...); default: the first found in /usr/share/GeoIP, /var/lib/GeoIP, ...")
	table := fs.String("table", nftables.DefaultTable, "the inet `table` the backend owns")
	netns := fs.String("netns", "", "work in the network namespace `name` (/run/netns/NAME)")
	apply := fs.Bool("apply", false, "apply the plan over netlink (root)")
	dry := fs.Bool("dry-run", false, "print what -apply would change")
	verbose := fs.Bool("v", false, "log timings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *policy == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("need -policy and no arguments")
	}
	if *apply && *dry {
		return errors.New("-apply and -dry-run exclude each other")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	plan, err := steer.CompileFile(*policy, *db, &steer.Options{
		Backends: []steer.Capabilities{steer.NFTables},
		Logger:   log,
		Context:  ctx,
	})
	if err != nil {
		return err
	}
	be := &nftables.Backend{Table: *table, Logger: log}
	if !*apply && !*dry {
		return be.Render(stdout, plan)
	}
	if *netns != "" {
		fd, err := unix.Open(filepath.Join("/run/netns", *netns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("-netns %s: %w", *netns, err)
		}
		defer unix.Close(fd)
		be.NetNS = fd
	}
	rep, err := be.Apply(ctx, plan, backend.ApplyOptions{DryRun: *dry})
	if err != nil {
		return err
	}
	verb := "changed"
	if rep.DryRun {
		verb = "would change"
	}
	if !rep.Changed() {
		fmt.Fprintf(stdout, "table inet %s: no changes\n", *table)
		return nil
	}
	fmt.Fprintf(stdout, "%s +%d −%d elements, %d rules:\n", verb, rep.ElementsAdded, rep.ElementsRemoved, rep.RulesChanged)
	for _, c := range rep.Changes {
		fmt.Fprintf(stdout, "  %s\n", c)
	}
	return nil
}
