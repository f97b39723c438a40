package cidr_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

func mustList(s string) cidr.Set {
	set, err := cidr.ParseList("example", strings.NewReader(s), cidr.ParseOptions{})
	if err != nil {
		panic(err)
	}
	return set
}

func ExampleGoal_MinPrefixes() {
	g := cidr.Goal{
		// The senders to match: three blocks of a /24.
		Match: mustList("198.51.100.0/25\n198.51.100.128/27\n198.51.100.240/28"),
		// Space nobody sends from: whatever matches there is harmless.
		DontCare: mustList("198.51.100.160/27\n198.51.100.192/27"),
	}
	fmt.Println("exact:", g.Match.Prefixes())
	fmt.Println("with don't-care:", g.MinPrefixes().Prefixes())
	fmt.Println("ranges:", g.MinRanges().Ranges())
	// The complement rule must list the rest of IPv4 (and all of IPv6).
	fmt.Println("inverse IPv4:", g.Inverse().MinPrefixes().IPv4().NumPrefixes(), "prefixes")
	// Output:
	// exact: [198.51.100.0/25 198.51.100.128/27 198.51.100.240/28]
	// with don't-care: [198.51.100.0/25 198.51.100.128/26 198.51.100.240/28]
	// ranges: [198.51.100.0-198.51.100.159 198.51.100.240-198.51.100.255]
	// inverse IPv4: 25 prefixes
}

func ExampleGoal_FitPrefixes() {
	g := cidr.Goal{
		Match:    mustList("192.0.2.0/26\n192.0.2.64/27\n192.0.2.100\n192.0.2.128/25"),
		DontCare: mustList("192.0.2.112/28"),
	}
	for _, max := range []int{4, 3, 1} {
		f, err := g.FitPrefixes(context.Background(), max)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%d: %v extra %d missed %d (at least %d)\n",
			max, f.Set.Prefixes(), f.Loss.Extra4, f.Loss.Missed4, f.Bound4)
	}
	f, _ := g.FitRanges(context.Background(), 1)
	fmt.Printf("1 range: %v extra %d missed %d\n", f.Set.Ranges(), f.Loss.Extra4, f.Loss.Missed4)
	// Output:
	// 4: [192.0.2.0/26 192.0.2.64/27 192.0.2.100/32 192.0.2.128/25] extra 0 missed 0 (at least 0)
	// 3: [192.0.2.0/26 192.0.2.64/27 192.0.2.128/25] extra 0 missed 1 (at least 1)
	// 1: [192.0.2.0/24] extra 15 missed 0 (at least 15)
	// 1 range: [192.0.2.0-192.0.2.255] extra 15 missed 0
}
