package splitter

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSession is one short SMTP session per iteration on loopback:
// connect from a source in 127.0.0.0/8, read the 220 banner, QUIT, read
// 221, close. "direct" talks to the sink itself, so the difference between
// the two is the splitter's cost per connection (both processes' CPU, the
// client's and the sink's included, is in a -cpuprofile).
func BenchmarkSession(b *testing.B) {
	a, bs, strict := newSinks(b, false)
	p := seedPlan(a.Addr, bs.Addr, strict.Addr, netip.AddrPort{}, netip.AddrPort{})
	cases := []struct {
		name string
		addr netip.AddrPort
	}{{"direct", a.Addr}}
	for _, e := range engines() {
		s := start(b, p, Options{Engine: e, Logger: slog.New(slog.DiscardHandler)})
		to, _ := s.ListenAddr(mx1)
		cases = append(cases, struct {
			name string
			addr netip.AddrPort
		}{"splitter-" + e.String(), to})
	}
	for _, bm := range cases {
		b.Run(bm.name, func(b *testing.B) {
			var n atomic.Uint32
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				buf := bufio.NewReaderSize(nil, 512)
				for pb.Next() {
					// Sources 127.1-63.x.y: English and below the split,
					// so every session reaches sink a.
					i := n.Add(1)
					src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(1 + i%63), byte(i >> 8), byte(1 + i%254)}), 0)
					if err := benchSession(buf, src, bm.addr); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// CPU time says more than wall time on a shared machine.
			if cpu0 >= 0 {
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

func benchSession(br *bufio.Reader, src, to netip.AddrPort) error {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(src)}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br.Reset(c)
	for _, step := range []struct{ send, want string }{{"", "220 a "}, {"QUIT\r\n", "221 "}} {
		if step.send != "" {
			if _, err := io.WriteString(c, step.send); err != nil {
				return err
			}
		}
		l, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(l, step.want) {
			return fmt.Errorf("got %q, want %q…", l, step.want)
		}
	}
	return nil
}
