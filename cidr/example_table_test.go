package cidr_test

import (
	"fmt"
	"net/netip"

	"github.com/geosteer/geosteer/cidr"
)

func ExampleTableBuilder() {
	countries := []string{"US", "GB", "DE"} // label → name
	var b cidr.TableBuilder
	b.AddPrefix(netip.MustParsePrefix("8.0.0.0/8"), 0)
	b.AddPrefix(netip.MustParsePrefix("8.8.8.0/24"), 2) // longer: wins inside
	b.AddPrefix(netip.MustParsePrefix("2a00:1450::/32"), 1)
	t, err := b.Table()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range []string{"8.1.2.3", "8.8.8.8", "::ffff:8.8.8.8", "2a00:1450::1", "192.0.2.1"} {
		if l, ok := t.Lookup(netip.MustParseAddr(a)); ok {
			fmt.Println(a, countries[l])
		} else {
			fmt.Println(a, "-")
		}
	}
	// Output:
	// 8.1.2.3 US
	// 8.8.8.8 DE
	// ::ffff:8.8.8.8 DE
	// 2a00:1450::1 GB
	// 192.0.2.1 -
}

func ExampleTableOf() {
	var en, de cidr.Builder
	en.AddPrefix(netip.MustParsePrefix("81.0.0.0/8"))
	de.AddPrefix(netip.MustParsePrefix("81.200.0.0/16"))
	english, _ := en.Set()
	german, _ := de.Set()
	t, err := cidr.TableOf(english, german) // labels 0 and 1
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Lookup(netip.MustParseAddr("81.1.1.1")))
	fmt.Println(t.Lookup(netip.MustParseAddr("81.200.1.1")))
	fmt.Println(t.Lookup(netip.MustParseAddr("82.1.1.1")))
	// Output:
	// 0 true
	// 1 true
	// 0 false
}

func ExampleSet_Compile() {
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24"))
	b.AddPrefix(netip.MustParsePrefix("2001:db8::/32"))
	s, _ := b.Set()
	s = s.Compile() // Contains is now a table lookup
	fmt.Println(s.Contains(netip.MustParseAddr("192.0.2.7")), s.Contains(netip.MustParseAddr("198.51.100.1")))
	// Output: true false
}

func ExampleTableAppender() {
	countries := []string{"US", "GB"} // label → name
	var a cidr.TableAppender
	// Ranges in ascending order, as a walk over sorted data yields them.
	a.Append(netip.MustParseAddr("8.0.0.0"), netip.MustParseAddr("8.8.7.255"), 0)
	a.Append(netip.MustParseAddr("8.8.8.0"), netip.MustParseAddr("8.8.8.255"), 1)
	a.Append(netip.MustParseAddr("2a00:1450::"), netip.MustParseAddr("2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff"), 1)
	t, err := a.Table()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range []string{"8.1.2.3", "8.8.8.8", "8.8.9.1", "2a00:1450::1"} {
		if l, ok := t.Lookup(netip.MustParseAddr(s)); ok {
			fmt.Println(s, countries[l])
		} else {
			fmt.Println(s, "-")
		}
	}
	// Output:
	// 8.1.2.3 US
	// 8.8.8.8 GB
	// 8.8.9.1 -
	// 2a00:1450::1 GB
}
