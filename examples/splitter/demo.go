package main

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/geosteer/geosteer/backend/splitter"
	"github.com/geosteer/geosteer/backend/splitter/splittertest"
	"github.com/geosteer/geosteer/steer"
)

// The demo's policy and the address list it names.
//
//go:embed testdata/demo.yaml testdata/english-sample.txt
var demoFiles embed.FS

const demoPolicyName = "testdata/demo.yaml"

// demoTarpit is the strict target's tarpit in the demo: long enough to
// see, short enough to wait for.
const demoTarpit = 300 * time.Millisecond

// demoPolicy loads the embedded demo policy.
func demoPolicy() (*steer.Policy, error) {
	sub, err := fs.Sub(demoFiles, "testdata")
	if err != nil {
		return nil, err
	}
	f, err := sub.Open("demo.yaml")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return steer.Load(demoPolicyName, f, sub)
}

// demo runs the embedded demo policy (the seed's setup) on loopback: it
// starts an SMTP sink for each target, on IPv4 and (if the host has it)
// IPv6 loopback, puts the sinks' addresses in place of the targets', and
// listens for the entry points on free loopback ports. Then it connects
// from demo senders across 127.0.0.0/8 and ::1 and prints which sink each
// reached, and shows a failover. The policy makes 127.0.0.0/9 and ::1
// "english" and splits at 127.64.0.0: senders in 127.0-63 reach a on mx1,
// 127.64-127 reach b, and 127.128-255 (not english) the strict server.
func demo(ctx context.Context, w io.Writer) error {
	p, err := demoPolicy()
	if err != nil {
		return err
	}
	sinks4 := map[string]*splittertest.Sink{}
	var sinks []*splittertest.Sink
	defer func() {
		for _, s := range sinks {
			s.Close()
		}
	}()
	v6 := true
	for _, fam := range []int{4, 6} {
		host := map[int]string{4: "127.0.0.1:0", 6: "[::1]:0"}[fam]
		for i := range p.Targets {
			t := &p.Targets[i]
			s, err := splittertest.NewSink(t.Name, host, true)
			if err != nil && fam == 6 {
				fmt.Fprintln(w, "(no IPv6 loopback: the demo runs on IPv4 only)")
				v6 = false
				break
			}
			if err != nil {
				return err
			}
			sinks = append(sinks, s)
			if fam == 4 {
				t.IPv4 = s.Addr
				sinks4[t.Name] = s
			} else {
				t.IPv6 = s.Addr
			}
		}
	}
	if !v6 {
		for i := range p.Targets {
			p.Targets[i].IPv6 = netip.AddrPort{}
		}
		for i := range p.EntryPoints {
			p.EntryPoints[i].IPv6 = netip.Addr{}
		}
	}
	plan, err := steer.Compile(p, nil, &steer.Options{Backends: []steer.Capabilities{steer.Splitter}, Context: ctx})
	if err != nil {
		return err
	}
	opts := splitter.Options{
		Listen:         map[netip.AddrPort]netip.AddrPort{},
		ProxyProtocol:  2,
		Tarpit:         map[string]time.Duration{},
		HealthInterval: -1,
		Logger:         slog.New(slog.DiscardHandler),
	}
	for _, ep := range splitter.EntryPoints(plan) {
		lo := netip.IPv6Loopback()
		if ep.Addr().Is4() {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		opts.Listen[ep] = netip.AddrPortFrom(lo, 0)
	}
	var strict []string
	for _, t := range p.Targets {
		if t.Strict {
			opts.Tarpit[t.Name] = demoTarpit
			strict = append(strict, t.Name)
		}
	}
	s, err := splitter.New(plan, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	var listing bytes.Buffer
	s.Render(&listing, plan)
	fmt.Fprintf(w, "The demo policy (%s), its targets replaced by SMTP sinks on loopback:\n\n%s\n\n", demoPolicyName, indent(listing.String()))

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
	mx := func(name string, fam int) netip.AddrPort {
		for _, e := range p.EntryPoints {
			if e.Name == name {
				return netip.AddrPortFrom(e.Addr(fam), 25)
			}
		}
		panic("demo policy has no entry point " + name)
	}
	for _, src := range []string{"127.0.0.10", "127.64.0.10", "127.128.0.10"} {
		for _, ep := range []string{"mx1", "mx2"} {
			send(src, mx(ep, 4))
		}
	}
	if v6 {
		send("::1", mx("mx1", 6))
	}
	fmt.Fprintf(w, "\n(%s is tarpitted for %v.) Now sink a's IPv4 listener stops; senders it served fail over\n", strings.Join(strict, ", "), demoTarpit)
	fmt.Fprintln(w, "to the server the other MX would give them:")
	sinks4["a"].Close()
	send("127.0.0.10", mx("mx1", 4))

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
