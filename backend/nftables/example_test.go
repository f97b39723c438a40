package nftables_test

import (
	"net/netip"
	"os"
	"strings"

	"github.com/geosteer/geosteer/backend/nftables"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// Render writes the script an operator reviews, or loads with nft -f.
// Apply (root, or CAP_NET_ADMIN) sends the same to the kernel over netlink.
func ExampleBackend_Render() {
	english, _ := cidr.ParseList("english", strings.NewReader("192.0.2.0/24\n198.51.100.0-198.51.100.99\n2001:db8::/32\n"), cidr.ParseOptions{})
	mx := netip.MustParseAddr("203.0.113.1")
	p := &steer.Plan{
		Sets: []steer.Set{{Name: "english", Addrs: english}},
		Rules: []steer.Rule{
			{Name: "foreign", Family: 4, DstAddr: mx, DstPort: 25, SrcSet: "english", SrcSetNot: true,
				Target: "strict", To: netip.MustParseAddrPort("10.0.0.3:25")},
			{Name: "split-0", Family: 4, DstAddr: mx, DstPort: 25, Src: netipx.MustParseIPRange("0.0.0.0-127.255.255.255"),
				Target: "a", To: netip.MustParseAddrPort("10.0.0.1:25")},
			{Name: "split-1", Family: 4, DstAddr: mx, DstPort: 25, Src: netipx.MustParseIPRange("128.0.0.0-255.255.255.255"),
				Target: "b", To: netip.MustParseAddrPort("10.0.0.2:25")},
		},
	}
	be := &nftables.Backend{} // table inet geosteer, this network namespace
	if err := be.Render(os.Stdout, p); err != nil {
		panic(err)
	}
	// Output:
	// #!/usr/sbin/nft -f
	// # geosteer: 2 sets (3 ranges), 3 rules. Replaces table inet geosteer atomically.
	// table inet geosteer
	// delete table inet geosteer
	//
	// table inet geosteer {
	// 	set english_v4 {
	// 		type ipv4_addr
	// 		flags interval
	// 		elements = {
	// 			192.0.2.0/24,
	// 			198.51.100.0-198.51.100.99
	// 		}
	// 	}
	//
	// 	set english_v6 {
	// 		type ipv6_addr
	// 		flags interval
	// 		elements = {
	// 			2001:db8::/32
	// 		}
	// 	}
	//
	// 	chain prerouting {
	// 		type nat hook prerouting priority dstnat; policy accept;
	// 		ip daddr 203.0.113.1 tcp dport 25 ip saddr != @english_v4 counter dnat ip to 10.0.0.3:25 comment "foreign"
	// 		ip daddr 203.0.113.1 tcp dport 25 ip saddr 0.0.0.0-127.255.255.255 counter dnat ip to 10.0.0.1:25 comment "split-0"
	// 		ip daddr 203.0.113.1 tcp dport 25 ip saddr 128.0.0.0-255.255.255.255 counter dnat ip to 10.0.0.2:25 comment "split-1"
	// 	}
	// }
}
