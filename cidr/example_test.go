package cidr_test

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

func ExampleParseList() {
	list := `# blocks missing from the database
192.0.2.0/25
192.0.2.128/25      # the other half
198.51.100.10-198.51.100.13
2001:db8::/48
`
	s, err := cidr.ParseList("overrides.txt", strings.NewReader(list), cidr.ParseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.NumPrefixes(), "prefixes,", s.NumRanges(), "ranges")
	s.WriteList(os.Stdout)
	// Output:
	// 4 prefixes, 3 ranges
	// 192.0.2.0/24
	// 198.51.100.10/31
	// 198.51.100.12/31
	// 2001:db8::/48
}

func ExampleParseList_error() {
	_, err := cidr.ParseList("trusted.txt", strings.NewReader("10.0.0.0/8\n10.1.2.3/16\n"), cidr.ParseOptions{})
	fmt.Println(err)
	// Output:
	// trusted.txt:2: "10.1.2.3/16": prefix has host bits set (did you mean 10.1.0.0/16?)
}

func ExampleBuilder() {
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("10.0.0.0/8"))
	b.RemovePrefix(netip.MustParsePrefix("10.128.0.0/9"))
	b.Add(netip.MustParseAddr("::ffff:192.0.2.1")) // held as IPv4
	s, err := b.Set()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	fmt.Println(s.Contains(netip.MustParseAddr("10.1.2.3")), s.Contains(netip.MustParseAddr("10.200.0.1")))
	// Output:
	// {10.0.0.0/9, 192.0.2.1}
	// true false
}

func ExampleSet_Complement() {
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("0.0.0.0/1"))
	english, _ := b.Set()
	foreign := english.Complement().IPv4()
	fmt.Println(foreign.Prefixes())
	// Output:
	// [128.0.0.0/1]
}
