package addrword_test

import (
	"fmt"
	"net/netip"

	"github.com/geosteer/geosteer/internal/addrword"
)

// The words of an address's 16-byte form: an IPv4 address is in the low
// 32 bits of Lo64, with Hi64 zero, as in its IPv4-mapped form.
func Example() {
	for _, s := range []string{"2001:db8::1%eth0", "192.0.2.7", "::ffff:192.0.2.7"} {
		a := netip.MustParseAddr(s)
		fmt.Printf("%-17s /16 %#04x  hi %#016x  lo %#016x\n", s, addrword.Hi16(a), addrword.Hi64(a), addrword.Lo64(a))
	}
	// Output:
	// 2001:db8::1%eth0  /16 0x2001  hi 0x20010db800000000  lo 0x0000000000000001
	// 192.0.2.7         /16 0x0000  hi 0x0000000000000000  lo 0x0000ffffc0000207
	// ::ffff:192.0.2.7  /16 0x0000  hi 0x0000000000000000  lo 0x0000ffffc0000207
}
