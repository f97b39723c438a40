// Command netlist prints the networks of a MaxMind DB country database, one
// per line in database order, to make the text inputs of the whole-process
// benchmarks (see ../../README.md).
//
//	netlist [-family 4|6] [-shuffle SEED] DB [CC ...]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/geosteer/geosteer/benchmarks/dataset"
)

func main() {
	family := flag.Int("family", 4, "address family: 4 or 6")
	shuffle := flag.Uint64("shuffle", 0, "if not 0, shuffle with this seed and add duplicates and split halves (input D)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: netlist [-family 4|6] [-shuffle SEED] DB [CC ...]")
		os.Exit(2)
	}
	nets, err := dataset.Load(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "netlist:", err)
		os.Exit(1)
	}
	ps := dataset.Select(nets, *family, flag.Args()[1:]...)
	if *shuffle != 0 {
		ps = dataset.Messy(ps, *shuffle)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	var line []byte
	for _, p := range ps {
		line = append(p.AppendTo(line[:0]), '\n')
		w.Write(line)
	}
}
