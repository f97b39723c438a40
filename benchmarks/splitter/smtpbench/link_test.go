package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geosteer/geosteer/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []float64 // bit/s; nil for an error
	}{
		{"1gbit,2.5gbit,none", []float64{1e9, 2.5e9, 0}},
		{"500mbit, 10GBIT", []float64{500e6, 10e9}},
		{"64kbit", []float64{64e3}},
		{"none", []float64{0}},
		{"1gb", nil},
		{"gbit", nil},
		{"0gbit", nil},
		{"-1mbit", nil},
		{"1gbit,", nil},
		{"", nil},
	} {
		rs, err := parseRates(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("parseRates(%q) = %v, want an error", tc.in, rs)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRates(%q): %v", tc.in, err)
			continue
		}
		var got []float64
		for _, r := range rs {
			got = append(got, r.bps)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("parseRates(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRateLabel(t *testing.T) {
	for _, tc := range []struct {
		bps  float64
		want string
	}{{0, "unshaped veth"}, {1e9, "1 Gbit/s"}, {2.5e9, "2.5 Gbit/s"}, {500e6, "500 Mbit/s"}} {
		if got := (linkRate{bps: tc.bps}).label(); got != tc.want {
			t.Errorf("label(%g) = %q, want %q", tc.bps, got, tc.want)
		}
	}
}

func TestTbfArgs(t *testing.T) {
	for _, tc := range []struct {
		bps   float64
		burst time.Duration
		want  string
	}{
		// 1 ms at 10 Gbit/s is 1.25 MB.
		{10e9, time.Millisecond, "qdisc replace dev v0 root tbf rate 10000000000bit burst 1250000 latency 10ms"},
		// 1 ms at 1 Gbit/s is 125 kB, under the 128 KiB floor.
		{1e9, time.Millisecond, "qdisc replace dev v0 root tbf rate 1000000000bit burst 131072 latency 10ms"},
		{2.5e9, 2 * time.Millisecond, "qdisc replace dev v0 root tbf rate 2500000000bit burst 625000 latency 10ms"},
	} {
		if got := strings.Join(tbfArgs("v0", linkRate{bps: tc.bps}, tc.burst), " "); got != tc.want {
			t.Errorf("tbfArgs(%g, %v) = %q, want %q", tc.bps, tc.burst, got, tc.want)
		}
	}
}

func TestLinkTable(t *testing.T) {
	rates := []linkRate{{"1gbit", 1e9}, {"none", 0}}
	thr := [][][]float64{
		{{110, 115, 100}, {100, 112, 90}},     // 1 Gbit/s: direct median 110, proxy 100
		{{1600, 1500, 1400}, {800, 700, 750}}, // unshaped: 1500 and 750
	}
	var b strings.Builder
	linkTable(&b, rates, []string{"direct", "proxy"}, thr)
	want := `| 10 MiB relay over the client's link, MiB/s (×direct), median of 3 | 1 Gbit/s | unshaped veth |
|---|---:|---:|
| link rate (its TCP payload at MTU 1500) | 119 (114) | – |
| direct | 110 (1.00) | 1500 (1.00) |
| proxy | 100 (0.91) | 750 (0.50) |
`
	if b.String() != want {
		t.Errorf("linkTable:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestParseTbfStats(t *testing.T) {
	out := `qdisc tbf 801c: root refcnt 3 rate 1Gbit burst 131000b lat 10ms
 Sent 10617432 bytes 191 pkt (dropped 2, overlimits 355 requeues 0)
 backlog 0b 0p requeues 0
`
	got, err := parseTbfStats(out)
	if want := (tbfStats{10617432, 191, 2, 355}); err != nil || got != want {
		t.Errorf("parseTbfStats = %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseTbfStats("Error: Cannot find device"); err == nil {
		t.Error("parseTbfStats of no counters: no error")
	}
}

// burn spins until this process has used d more CPU time.
func burn(d time.Duration) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
	for end := ts.Nano() + d.Nanoseconds(); ts.Nano() < end; {
		unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
	}
}

func TestSchedCPU(t *testing.T) {
	var a, b unix.Timespec
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &a)
	s0 := schedCPU(os.Getpid())
	m0 := machineBusy()
	burn(100 * time.Millisecond)
	s1 := schedCPU(os.Getpid())
	m1 := machineBusy()
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &b)
	// The process's own clock, read through its pid, lies between two
	// reads of the clock of the calling process.
	if s0 < time.Duration(a.Nano()) || s1 > time.Duration(b.Nano()) || s1-s0 < 100*time.Millisecond {
		t.Errorf("schedCPU: %v then %v, want within [%v, %v] and 100ms apart", s0, s1, time.Duration(a.Nano()), time.Duration(b.Nano()))
	}
	// /proc/stat samples in ticks: the burn shows, roughly.
	if m1-m0 < 30*time.Millisecond {
		t.Errorf("machineBusy rose by %v over a 100ms burn", m1-m0)
	}
}

// newNetns returns a new, empty network namespace (its loopback down),
// made on a thread that is then thrown away.
func newNetns(t *testing.T) *os.File {
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, err}
			return
		}
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		ch <- res{f, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.f.Close() })
	return r.f
}

// cookie is the network namespace cookie of a new socket made on the
// calling thread.
func cookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
}

// TestInNetns checks that what inNetns's function dials lives in the other
// namespace (whose loopback is down, so a listener here is unreachable),
// and that no thread is left there afterwards.
func TestInNetns(t *testing.T) {
	testenv.NeedRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	home, err := cookie()
	if err != nil {
		t.Fatal(err)
	}
	ns := newNetns(t)
	for range 20 {
		var there uint64
		err := inNetns(ns, func() error {
			if there, err = cookie(); err != nil {
				return err
			}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			if err == nil {
				c.Close()
				return fmt.Errorf("dialled %s from the other namespace", ln.Addr())
			}
			if !errors.Is(err, syscall.ENETUNREACH) {
				return fmt.Errorf("dial from the other namespace: %w, want ENETUNREACH", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if there == home {
			t.Fatalf("socket in the other namespace has this one's cookie %d", home)
		}
	}
	// Every thread is back: sockets made on any of them are here, and the
	// listener answers.
	errc := make(chan error, 8)
	for range cap(errc) {
		go func() {
			if c, err := cookie(); err != nil || c != home {
				errc <- fmt.Errorf("socket made after inNetns: cookie %d (%v), want %d", c, err, home)
				return
			}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			if err == nil {
				c.Close()
			}
			errc <- err
		}()
	}
	for range cap(errc) {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
