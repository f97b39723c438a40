package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// linkRate is a rate of the client's link: bps bit/s (SI, as tc counts),
// or 0 for the unshaped veth.
type linkRate struct {
	name string // as given, for messages
	bps  float64
}

// label is the rate for a table's header.
func (r linkRate) label() string {
	switch {
	case r.bps == 0:
		return "unshaped veth"
	case r.bps >= 1e9:
		return strconv.FormatFloat(r.bps/1e9, 'g', -1, 64) + " Gbit/s"
	default:
		return strconv.FormatFloat(r.bps/1e6, 'g', -1, 64) + " Mbit/s"
	}
}

// mibps is the rate in MiB/s of payload-and-headers, the ceiling a relay
// over the link can reach (0 when unshaped).
func (r linkRate) mibps() float64 { return r.bps / 8 / (1 << 20) }

// parseRates reads a comma-separated list of rates in tc's SI units
// (kbit, mbit, gbit; "2.5gbit") or "none" for the unshaped veth.
func parseRates(s string) ([]linkRate, error) {
	var rs []linkRate
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "none" {
			rs = append(rs, linkRate{f, 0})
			continue
		}
		num, mult := f, 0.0
		for _, u := range []struct {
			suffix string
			mult   float64
		}{{"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}} {
			if n, ok := strings.CutSuffix(strings.ToLower(f), u.suffix); ok {
				num, mult = n, u.mult
				break
			}
		}
		v, err := strconv.ParseFloat(num, 64)
		if mult == 0 || err != nil || v <= 0 {
			return nil, fmt.Errorf("rate %q: want a positive number of kbit, mbit or gbit, or none", f)
		}
		rs = append(rs, linkRate{f, v * mult})
	}
	return rs, nil
}

// tbfArgs are tc's arguments that shape dev's egress to r with a token
// bucket. The bucket holds burst's worth of the rate but never less than
// 128 KiB: veth passes TCP's segmentation-offload packets whole (up to
// 64 KiB), and tbf splits in software any packet larger than its bucket,
// which a NIC's TSO would not cost the host. latency bounds the queue.
func tbfArgs(dev string, r linkRate, burst time.Duration) []string {
	b := max(int64(r.bps/8*burst.Seconds()), 128<<10)
	return []string{"qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", strconv.FormatFloat(r.bps, 'f', 0, 64) + "bit",
		"burst", strconv.FormatInt(b, 10), "latency", "10ms"}
}

// linkBench is link mode: relays from a client in another network
// namespace (nsName, open as ns), over a veth pair whose client end dev is
// shaped to each rate in turn, to peers listening on this namespace's end.
type linkBench struct {
	ns          *os.File
	nsName, dev string
	src         net.IP
	rates       []linkRate
	burst       time.Duration
	// shaped is the index in rates of the tbf on dev, -1 for none; stats
	// are each rate's tbf counters, read before the tbf is replaced.
	shaped int
	stats  []tbfStats
	base   tbfStats // the counters when the tbf was set: replace keeps them
}

// tbfStats are a tbf's counters (tc -s).
type tbfStats struct{ bytes, pkts, dropped, overlimits int64 }

var sentRE = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)`)

// parseTbfStats reads the counters from tc -s qdisc show's output.
func parseTbfStats(out string) (tbfStats, error) {
	m := sentRE.FindStringSubmatch(out)
	if m == nil {
		return tbfStats{}, fmt.Errorf("no counters in tc's output %q", out)
	}
	var v [4]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(m[i+1], 10, 64) // digits only: cannot fail but by overflow
	}
	return tbfStats{v[0], v[1], v[2], v[3]}, nil
}

func (l *linkBench) tc(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.nsName, "tc"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("tc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// shape puts rates[ri] on dev (ri -1 or an unshaped rate: no tbf), first
// adding what the tbf it replaces counted since it was set to that rate's
// counters.
func (l *linkBench) shape(ri int) error {
	if l.shaped >= 0 {
		out, err := l.tc("-s", "qdisc", "show", "dev", l.dev)
		if err != nil {
			return err
		}
		st, err := parseTbfStats(out)
		if err != nil {
			return err
		}
		sum := &l.stats[l.shaped]
		sum.bytes += st.bytes - l.base.bytes
		sum.pkts += st.pkts - l.base.pkts
		sum.dropped += st.dropped - l.base.dropped
		sum.overlimits += st.overlimits - l.base.overlimits
	}
	if ri < 0 || l.rates[ri].bps == 0 {
		if l.shaped < 0 {
			return nil
		}
		l.shaped = -1
		_, err := l.tc("qdisc", "del", "dev", l.dev, "root")
		return err
	}
	if _, err := l.tc(tbfArgs(l.dev, l.rates[ri], l.burst)...); err != nil {
		return err
	}
	l.shaped = ri
	out, err := l.tc("-s", "qdisc", "show", "dev", l.dev)
	if err == nil {
		l.base, err = parseTbfStats(out)
	}
	return err
}

// run relays the message relays times through every peer at every rate:
// per round, the rates in turn and at each all peers, both orders rotating
// between rounds so that no peer or rate always goes first. It prints the
// throughput table, the CPU the relays took and tbf's counters.
func (l *linkBench) run(w io.Writer, peers []*peer, relays int) error {
	l.shaped, l.stats = -1, make([]tbfStats, len(l.rates))
	thr := make([][][]float64, len(l.rates)) // [rate][peer] MiB/s
	cpu := make([][]time.Duration, len(l.rates))
	busy, wall := make([]time.Duration, len(l.rates)), make([]time.Duration, len(l.rates))
	for i := range l.rates {
		thr[i] = make([][]float64, len(peers))
		cpu[i] = make([]time.Duration, len(peers))
	}
	self := os.Getpid()
	t0 := time.Now()
	for t := range relays {
		for j := range l.rates {
			ri := (j + t) % len(l.rates)
			r := l.rates[ri]
			if err := l.shape(ri); err != nil {
				return err
			}
			b0, w0 := machineBusy(), time.Now()
			for i := range peers {
				k := (i + t) % len(peers)
				p := peers[k]
				pid := self // direct: the client and sink, this process
				if p.cmd != nil {
					pid = p.cmd.Process.Pid
				}
				c0 := schedCPU(pid)
				d, err := relay(p.addr, l.src, l.ns)
				if err != nil {
					return fmt.Errorf("%s at %s: %w", p.name, r.name, err)
				}
				cpu[ri][k] += schedCPU(pid) - c0
				thr[ri][k] = append(thr[ri][k], 10/d.Seconds())
			}
			busy[ri] += machineBusy() - b0
			wall[ri] += time.Since(w0)
		}
		fmt.Fprintf(os.Stderr, "smtpbench: link round %d/%d done after %v\n", t+1, relays, time.Since(t0).Round(time.Second))
	}
	if err := l.shape(-1); err != nil {
		return err
	}
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = p.name
	}
	linkTable(w, l.rates, names, thr)
	// CPU: the proxy process's own time (not the softirq work the kernel
	// charges to whoever it interrupts), and the whole machine's.
	fmt.Fprintf(w, "\n| CPU ms per 10 MiB relay (mean of %d) |", relays)
	for _, r := range l.rates {
		fmt.Fprintf(w, " %s |", r.label())
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(l.rates)))
	for k, p := range peers {
		name := p.name + ": the proxy process"
		switch {
		case p.key == "socat": // a process per connection, not counted
			continue
		case p.cmd == nil:
			name = p.name + ": client and sink (smtpbench)"
		}
		fmt.Fprintf(w, "| %s |", name)
		for ri := range l.rates {
			fmt.Fprintf(w, " %.1f |", ms(cpu[ri][k])/float64(relays))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| machine: %% of its %d CPUs busy during the relays (everyone's) |", runtime.NumCPU())
	for ri := range l.rates {
		fmt.Fprintf(w, " %.0f%% |", 100*busy[ri].Seconds()/wall[ri].Seconds()/float64(runtime.NumCPU()))
	}
	fmt.Fprintln(w)
	// The shaping's own account. tc counts an offload (GSO) packet as its
	// segments, so bytes per packet is the wire size of a segment, headers
	// included (~1514), which the payload ceiling above assumes; drops
	// would mean the queue (latency) was too short for the sender.
	fmt.Fprintf(w, "\n| tbf on the client's veth, over all relays at the rate |")
	for _, r := range l.rates {
		fmt.Fprintf(w, " %s |", r.label())
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(l.rates)))
	for _, row := range []struct {
		name string
		f    func(tbfStats) string
	}{
		{"segments", func(s tbfStats) string { return strconv.FormatInt(s.pkts, 10) }},
		{"bytes per segment", func(s tbfStats) string { return fmt.Sprintf("%.0f", float64(s.bytes)/float64(max(s.pkts, 1))) }},
		{"dropped", func(s tbfStats) string { return strconv.FormatInt(s.dropped, 10) }},
		{"overlimits", func(s tbfStats) string { return strconv.FormatInt(s.overlimits, 10) }},
	} {
		fmt.Fprintf(w, "| %s |", row.name)
		for i, r := range l.rates {
			if r.bps == 0 {
				fmt.Fprint(w, " – |")
			} else {
				fmt.Fprintf(w, " %s |", row.f(l.stats[i]))
			}
		}
		fmt.Fprintln(w)
	}
	return nil
}

// linkTable prints the medians of thr ([rate][peer] MiB/s) as a markdown
// table: a row per peer, a column per rate, cells "MiB/s (×direct)" where
// direct is the first peer, after a row of the rates' ceilings.
func linkTable(w io.Writer, rates []linkRate, names []string, thr [][][]float64) {
	n := 0
	if len(thr) > 0 && len(thr[0]) > 0 {
		n = len(thr[0][0])
	}
	fmt.Fprintf(w, "| 10 MiB relay over the client's link, MiB/s (×direct), median of %d |", n)
	for _, r := range rates {
		fmt.Fprintf(w, " %s |", r.label())
	}
	fmt.Fprintf(w, "\n|---|%s\n| link rate (its TCP payload at MTU 1500) |", strings.Repeat("---:|", len(rates)))
	for _, r := range rates {
		if r.bps == 0 {
			fmt.Fprint(w, " – |")
		} else {
			// tbf counts whole frames: 1448 bytes of payload (MSS 1460
			// less TCP timestamps) in 1514 (MTU and Ethernet header).
			fmt.Fprintf(w, " %.0f (%.0f) |", r.mibps(), r.mibps()*1448/1514)
		}
	}
	fmt.Fprintln(w)
	for k, name := range names {
		fmt.Fprintf(w, "| %s |", name)
		for ri := range rates {
			t, direct := medianF(thr[ri][k]), medianF(thr[ri][0])
			if direct > 0 {
				fmt.Fprintf(w, " %.0f (%.2f) |", t, t/direct)
			} else {
				fmt.Fprintf(w, " %.0f (–) |", t)
			}
		}
		fmt.Fprintln(w)
	}
}

// schedCPU is the CPU time process pid has run, all its threads, to the
// nanosecond: the scheduler's clock of the process (clock_getcpuclockid),
// where /proc's utime and stime are sampled in 10 ms ticks, too coarse
// for relays of a few milliseconds.
func schedCPU(pid int) time.Duration {
	var ts unix.Timespec
	// CPUCLOCK_SCHED of the whole process: ((^pid) << 3) | 2.
	if err := unix.ClockGettime(int32((^pid)<<3|2), &ts); err != nil {
		check(fmt.Errorf("CPU clock of pid %d: %w", pid, err))
	}
	return time.Duration(ts.Nano())
}

// machineBusy is the time all CPUs have spent out of idle and iowait
// (user, nice, system, irq, softirq; not steal), from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	check(err)
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
