package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/geosteer/geosteer/backend/splitter"
	"github.com/geosteer/geosteer/backend/splitter/splittertest"
	"github.com/geosteer/geosteer/cidr"
)

//go:embed testdata/english-sample.txt
var englishSample []byte

// Demo entry points: documentation addresses, listened on at free
// loopback ports.
var (
	demoMX1 = netip.MustParseAddrPort("192.0.2.1:25")
	demoMX2 = netip.MustParseAddrPort("192.0.2.2:25")
	demoMX6 = netip.MustParseAddrPort("[2001:db8::1]:25")
)

// demo runs the seed's policy on loopback against three sinks and prints
// where each demo sender lands. Loopback senders have no country, so the
// demo adds 127.0.0.0/9 and ::1 to the sample english set and splits IPv4
// at 127.64.0.0: senders in 127.0-63 go to a on MX 1, 127.64-127 to b, and
// 127.128-255 (not english) to strict.
func demo(w io.Writer) error {
	var b cidr.Builder
	if err := b.AddList("english-sample.txt", englishSample, cidr.ParseOptions{}); err != nil {
		return err
	}
	b.AddPrefix(netip.MustParsePrefix("127.0.0.0/9"))
	b.AddPrefix(netip.MustParsePrefix("::1/128"))
	english, err := b.Set()
	if err != nil {
		return err
	}

	// Three sinks, each on IPv4 and (if the host has it) IPv6 loopback.
	fams := map[int]servers{}
	mxs := []netip.AddrPort{demoMX1, demoMX2}
	listen := map[netip.AddrPort]netip.AddrPort{
		demoMX1: netip.MustParseAddrPort("127.0.0.1:0"),
		demoMX2: netip.MustParseAddrPort("127.0.0.1:0"),
	}
	var sinks []*splittertest.Sink
	defer func() {
		for _, s := range sinks {
			s.Close()
		}
	}()
	for _, fam := range []int{4, 6} {
		host := map[int]string{4: "127.0.0.1:0", 6: "[::1]:0"}[fam]
		var sv [3]netip.AddrPort
		for i, name := range []string{"a", "b", "strict"} {
			s, err := splittertest.NewSink(name, host, true)
			if err != nil {
				if fam == 6 {
					fmt.Fprintln(w, "(no IPv6 loopback: the demo runs on IPv4 only)")
					break
				}
				return err
			}
			sinks = append(sinks, s)
			sv[i] = s.Addr
		}
		if sv[2].IsValid() {
			fams[fam] = servers{sv[0], sv[1], sv[2]}
		}
	}
	if _, ok := fams[6]; ok {
		mxs = append(mxs, demoMX6)
		listen[demoMX6] = netip.MustParseAddrPort("[::1]:0")
	}
	plan, err := seedPlan(mxs, english, fams, map[int]netip.Addr{4: netip.MustParseAddr("127.64.0.0"), 6: netip.MustParseAddr("8000::")})
	if err != nil {
		return err
	}
	opts := splitter.Options{
		Listen:         listen,
		ProxyProtocol:  2,
		Tarpit:         map[string]time.Duration{"strict": 300 * time.Millisecond},
		HealthInterval: -1,
		Logger:         slog.New(slog.DiscardHandler),
	}
	s, err := splitter.New(plan, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	var listing bytes.Buffer
	s.Render(&listing, plan)
	fmt.Fprintf(w, "The seed's policy, with the sample english set plus 127.0.0.0/9 and ::1:\n\n%s\n\n", indent(listing.String()))

	fmt.Fprintln(w, "sender          entry point          reached   server saw client   time")
	send := func(src string, ep netip.AddrPort) {
		banner, d, err := session(s, netip.MustParseAddr(src), ep)
		name, client := "-", fmt.Sprint(err)
		if err == nil {
			f := strings.Fields(banner) // 220 NAME ESMTP client=ADDR
			if len(f) == 4 {
				name, client = f[1], strings.TrimPrefix(f[3], "client=")
			} else {
				name, client = "?", banner
			}
		}
		fmt.Fprintf(w, "%-15s %-20v %-9s %-19v %.1fms\n", src, ep, name, client, d.Seconds()*1000)
	}
	for _, src := range []string{"127.0.0.10", "127.64.0.10", "127.128.0.10"} {
		for _, ep := range []netip.AddrPort{demoMX1, demoMX2} {
			send(src, ep)
		}
	}
	if _, ok := fams[6]; ok {
		send("::1", demoMX6)
	}
	fmt.Fprintln(w, "\n(strict is tarpitted for 300ms.) Now sink a's IPv4 listener stops; senders it served fail over")
	fmt.Fprintln(w, "to the server the other MX would give them:")
	sinks[0].Close()
	send("127.0.0.10", demoMX1)

	st := s.Stats()
	fmt.Fprintf(w, "\n%d connections accepted, %d refused;", st.Accepted, st.Rejected["no_target"]+st.Rejected["no_route"])
	for _, r := range st.Rules {
		if r.Failovers > 0 {
			fmt.Fprintf(w, " rule %s: %d failover", r.Rule, r.Failovers)
		}
	}
	fmt.Fprintln(w)
	return nil
}

// session connects from src to the entry point and reads the banner.
func session(s *splitter.Splitter, src netip.Addr, ep netip.AddrPort) (string, time.Duration, error) {
	local, _ := s.ListenAddr(ep)
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	t0 := time.Now()
	c, err := d.Dial("tcp", local.String())
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	l, err := r.ReadString('\n')
	dur := time.Since(t0)
	if err != nil {
		return "", dur, err
	}
	io.WriteString(c, "QUIT\r\n")
	r.ReadString('\n')
	return strings.TrimSpace(l), dur, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
