package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// sessions runs c clients against addr for dur: each session connects from
// a random source in 127.0.0.0/8, reads the banner (the latency measured:
// connect to banner), says EHLO and QUIT, and closes.
func sessions(addr string, c int, dur time.Duration) (n int, lat []time.Duration, errs int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(dur)
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var my []time.Duration
			bad := 0
			for time.Now().Before(end) {
				src := net.IPv4(127, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1+rng.IntN(254)))
				d, err := session(addr, src)
				if err != nil {
					bad++
					continue
				}
				my = append(my, d)
			}
			mu.Lock()
			lat = append(lat, my...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return len(lat), lat, errs
}

func session(addr string, src net.IP) (time.Duration, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	t0 := time.Now()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 512)
	if err := expect(br, "220"); err != nil {
		return 0, err
	}
	lat := time.Since(t0)
	io.WriteString(c, "EHLO bench\r\n")
	if err := expect(br, "250"); err != nil {
		return 0, err
	}
	io.WriteString(c, "QUIT\r\n")
	if err := expect(br, "221"); err != nil {
		return 0, err
	}
	return lat, nil
}

func expect(br *bufio.Reader, code string) error {
	l, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, code) {
		return fmt.Errorf("want %s, got %q", code, l)
	}
	return nil
}

// message is a 10 MiB message body of 100-byte lines, then the terminator.
var message = func() []byte {
	m := make([]byte, 10<<20)
	for i := range m {
		switch i % 100 {
		case 98:
			m[i] = '\r'
		case 99:
			m[i] = '\n'
		default:
			m[i] = 'a' + byte(i%26)
		}
	}
	m[len(m)-2], m[len(m)-1] = '\r', '\n'
	return append(m, ".\r\n"...)
}()

// relay sends the message through addr from src and returns the time from
// the first byte of the message to the server's 250. With ns non-nil the
// client's socket is created in that network namespace (link mode).
func relay(addr string, src net.IP, ns *os.File) (time.Duration, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	var c net.Conn
	var err error
	if ns == nil {
		c, err = d.Dial("tcp", addr)
	} else {
		err = inNetns(ns, func() (err error) { c, err = d.Dial("tcp", addr); return err })
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	for _, step := range []struct{ send, want string }{{"", "220"}, {"EHLO bench\r\n", "250"}, {"DATA\r\n", "354"}} {
		io.WriteString(c, step.send)
		if err := expect(br, step.want); err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	errc := make(chan error, 1)
	go func() { _, err := c.Write(message); errc <- err }()
	if err := expect(br, "250"); err != nil {
		return 0, err
	}
	d2 := time.Since(t0)
	if err := <-errc; err != nil {
		return 0, err
	}
	return d2, nil
}

// waitReady polls addr with sessions until one succeeds, up to 60s.
func waitReady(addr string) (time.Duration, error) {
	t0 := time.Now()
	for time.Since(t0) < 60*time.Second {
		if _, err := session(addr, net.IPv4(127, 0, 0, 9)); err == nil {
			return time.Since(t0), nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, errors.New("not ready after 60s")
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(p*float64(len(d))))]
}
