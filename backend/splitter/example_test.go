package splitter_test

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/geosteer/geosteer/backend/splitter"
	"github.com/geosteer/geosteer/backend/splitter/splittertest"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/steer"
)

// A splitter on loopback: sources in the "english" set go to server a,
// the rest to strict; the servers get a PROXY v2 header so they see the
// real client.
func ExampleNew() {
	a, _ := splittertest.NewSink("a", "127.0.0.1:0", true)
	defer a.Close()
	strict, _ := splittertest.NewSink("strict", "127.0.0.1:0", true)
	defer strict.Close()

	english, _ := cidr.ParseList("english", strings.NewReader("127.0.0.0/9\n"), cidr.ParseOptions{})
	mx := netip.MustParseAddrPort("192.0.2.1:25")
	plan := &steer.Plan{
		Sets: []steer.Set{{Name: "english", Addrs: english}},
		Rules: []steer.Rule{
			{Name: "foreign", Family: 4, DstAddr: mx.Addr(), DstPort: 25, SrcSet: "english", SrcSetNot: true, Target: "strict", To: strict.Addr},
			{Name: "english", Family: 4, DstAddr: mx.Addr(), DstPort: 25, Target: "a", To: a.Addr},
		},
	}
	s, err := splitter.New(plan, splitter.Options{
		Listen:        map[netip.AddrPort]netip.AddrPort{mx: netip.MustParseAddrPort("127.0.0.1:0")},
		ProxyProtocol: 2,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	local, _ := s.ListenAddr(mx)
	for _, src := range []string{"127.0.0.5", "127.200.0.5"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", local.String())
		if err != nil {
			fmt.Println(err)
			return
		}
		banner, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		fmt.Println(src+":", strings.TrimSpace(banner))
	}
	// Output:
	// 127.0.0.5: 220 a ESMTP client=127.0.0.5
	// 127.200.0.5: 220 strict ESMTP client=127.200.0.5
}

// The engine is an option, and a text value for flags and configuration
// files (examples/splitter: -engine goroutine). The zero value, auto, is
// the event loop on Linux and goroutines elsewhere.
func ExampleEngine() {
	var e splitter.Engine
	for _, name := range []string{"goroutine", "eventloop", "threads"} {
		if err := e.UnmarshalText([]byte(name)); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(e)
	}
	fmt.Println(splitter.Options{}.Engine)
	// Output:
	// goroutine
	// eventloop
	// splitter: unknown engine "threads": want auto, goroutine or eventloop
	// auto
}
