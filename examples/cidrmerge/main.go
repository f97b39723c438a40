// Command cidrmerge is the CIDR compressor: it reads prefix lists and writes
// the minimal list of prefixes (or ranges) that covers exactly the same
// addresses.
//
// Usage:
//
//	cidrmerge [-ranges] [-exclude FILE] [-mask] [-dontcare FILE] [-max N] [FILE ...]
//
// With -dontcare, addresses listed there (space without country data,
// bogons) may be matched or not, whichever gives the shorter list; the list
// stays exact on every other address. With -max, each family's list has at
// most N entries, misclassifying as few cared-for addresses as possible;
// the counts each way go to standard error.
//
// With no FILE, or with "-", it reads standard input. Input lines are
// addresses, prefixes or a-b ranges, IPv4 or IPv6, with # comments. The
// output is one entry per line on standard output and nothing else; a
// summary goes to standard error. A bad line fails the run with file:line
// and nothing is written.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"github.com/geosteer/geosteer/cidr"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cidrmerge:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cidrmerge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ranges := fs.Bool("ranges", false, "write ranges (a-b, or a prefix where a range is one) instead of prefixes")
	var excludes []string
	fs.Func("exclude", "subtract the prefix list in `FILE` (repeatable)", func(s string) error {
		excludes = append(excludes, s)
		return nil
	})
	mask := fs.Bool("mask", false, "accept prefixes with host bits set, masking them, instead of failing")
	quiet := fs.Bool("q", false, "no summary on standard error")
	var dontcare []string
	fs.Func("dontcare", "addresses in `FILE` may go either way (repeatable)", func(s string) error {
		dontcare = append(dontcare, s)
		return nil
	})
	budget := -1 // none
	fs.Func("max", "at most `N` entries per family, misclassifying as few addresses as possible", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("-max wants an entry count ≥ 0, not %q", s)
		}
		budget = n
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cidrmerge [-ranges] [-exclude FILE] [-mask] [-dontcare FILE] [-max N] [-q] [FILE ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := cidr.ParseOptions{MaskHostBits: *mask}

	var b cidr.Builder
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	entries := 0
	for _, name := range files {
		n, err := readInto(&b, name, stdin, opts)
		if err != nil {
			return err
		}
		entries += n
	}
	set, err := b.Set()
	if err != nil {
		return err
	}
	for _, name := range excludes {
		var eb cidr.Builder
		if _, err := readInto(&eb, name, stdin, opts); err != nil {
			return err
		}
		ex, err := eb.Set()
		if err != nil {
			return err
		}
		set = set.Difference(ex)
	}

	var dc cidr.Set
	for _, name := range dontcare {
		var db cidr.Builder
		if _, err := readInto(&db, name, stdin, opts); err != nil {
			return err
		}
		d, err := db.Set()
		if err != nil {
			return err
		}
		dc = dc.Union(d)
	}
	goal := cidr.Goal{Match: set, DontCare: dc}
	var fit *cidr.Fit
	switch {
	case budget >= 0:
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		fitFn := goal.FitPrefixes
		if *ranges {
			fitFn = goal.FitRanges
		}
		f, err := fitFn(ctx, budget)
		if err != nil {
			return err
		}
		set, fit = f.Set, &f
	case len(dontcare) > 0 && *ranges:
		set = goal.MinRanges()
	case len(dontcare) > 0:
		set = goal.MinPrefixes()
	}

	w := bufio.NewWriterSize(stdout, 64<<10)
	var line []byte
	out := 0
	if *ranges {
		for r := range set.AllRanges() {
			if p, ok := r.Prefix(); ok {
				line = p.AppendTo(line[:0])
			} else {
				line = r.AppendTo(line[:0])
			}
			w.Write(append(line, '\n'))
			out++
		}
	} else {
		for p := range set.AllPrefixes() {
			line = p.AppendTo(line[:0])
			w.Write(append(line, '\n'))
			out++
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !*quiet {
		v4, v6 := set.IPv4(), set.IPv6()
		kind := "prefixes"
		if *ranges {
			kind = "ranges"
		}
		fmt.Fprintf(stderr, "cidrmerge: %d entries in, %d %s out (IPv4: %d prefixes, %d ranges; IPv6: %d prefixes, %d ranges); %d IPv4 and %s IPv6 addresses covered\n",
			entries, out, kind, v4.NumPrefixes(), v4.NumRanges(), v6.NumPrefixes(), v6.NumRanges(), set.NumAddrs4(), set.NumAddrs6())
		if fit != nil {
			l := fit.Loss
			fmt.Fprintf(stderr, "cidrmerge: within %d entries per family: IPv4 %d matched wrongly, %d missed (%d in all, at least %d possible); IPv6 %v matched wrongly, %v missed (%v in all, at least %v possible)\n",
				budget, l.Extra4, l.Missed4, l.Total4(), fit.Bound4, l.Extra6, l.Missed6, l.Total6(), fit.Bound6)
		}
		if len(dontcare) > 0 {
			inv := goal.Inverse()
			n := inv.MinPrefixes().NumPrefixes()
			if *ranges {
				n = inv.MinRanges().NumRanges()
			}
			fmt.Fprintf(stderr, "cidrmerge: the inverse list (to match with the opposite rule) needs %d %s\n", n, kind)
		}
	}
	return nil
}

// readInto adds the list in name ("-" for stdin) to b and returns the number
// of entries read.
func readInto(b *cidr.Builder, name string, stdin io.Reader, opts cidr.ParseOptions) (int, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(stdin)
		name = "<stdin>"
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return 0, err
	}
	if err := b.AddList(name, data, opts); err != nil {
		return 0, err
	}
	return countEntries(data), nil
}

// countEntries counts the lines that are neither blank nor comments, for
// the summary.
func countEntries(data []byte) int {
	n, atStart := 0, true
	for _, c := range data {
		switch {
		case c == '\n':
			atStart = true
		case !atStart || c == ' ' || c == '\t' || c == '\r':
		default:
			atStart = false
			if c != '#' {
				n++
			}
		}
	}
	return n
}
