// Command rossim runs the RouterOS API simulator (routerostest) in a
// process of its own, so that a benchmark measures the memory of the
// client alone. It prints the address it listens on as the first line of
// standard output, answers each "stats" line on standard input with the
// server's Stats as one JSON line, and exits when standard input closes.
//
// Usage:
//
//	rossim [-latency 1ms] [-cost 0]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/geosteer/geosteer/backend/routeros/routerostest"
)

func main() {
	latency := flag.Duration("latency", 0, "round-trip latency added to every reply")
	cost := flag.Duration("cost", 0, "router CPU time per command")
	flag.Parse()
	srv, err := routerostest.NewServer(routerostest.Options{Latency: *latency, CommandCost: *cost})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rossim:", err)
		os.Exit(1)
	}
	defer srv.Close()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, srv.Addr())
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch strings.TrimSpace(in.Text()) {
		case "stats":
			b, _ := json.Marshal(srv.Stats())
			out.Write(append(b, '\n'))
			out.Flush()
		case "":
		default:
			fmt.Fprintln(os.Stderr, "rossim: unknown request", in.Text())
		}
	}
}
