// Command smtpbench measures SMTP connection splitters side by side on
// loopback: HAProxy (TCP mode, src ACL file), nginx's stream module (geo
// map), geosteer's splitter (examples/splitter, GOMAXPROCS=1; its event-loop
// and goroutine engines as two peers) and a direct connection as the floor.
// See ../run.sh, which builds what it needs.
//
//	smtpbench -list20k L -listfull F -splitter BIN [-trials 3] [-dur 3s]
//	smtpbench -median RUN1 RUN2 RUN3   # cell-by-cell median of runs' tables
//	smtpbench ... -netns NS -linkdev DEV -rates 1gbit,10gbit,none  # link mode
//
// Link mode (../link.sh, which makes the namespace and veth pair) measures
// only the relay, from a client in network namespace NS whose veth DEV is
// shaped with tc tbf to each rate in turn; the peers listen on this
// namespace's end of the pair.
//
// All peers enforce one policy on one entry point: sources outside the
// list go to sink "strict"; listed ones below 127.64.0.0 to "a", the rest
// to "b". The lists get 127.0.0.0/9 appended by run.sh so that loopback
// sources (random across 127.0.0.0/8) exercise all three routes.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is one peer's measurements at one concurrency, a value per trial.
type result struct {
	rate, p50, p99, cpu []float64
	errs                int
}

// upper is 127.64.0.0-255.255.255.255 as prefixes.
var upper = []string{"127.64.0.0/10", "127.128.0.0/9", "128.0.0.0/1"}

type peer struct {
	key   string // for -peers
	name  string
	addr  string
	start func(list string) (*exec.Cmd, error) // nil for direct
	cmd   *exec.Cmd
	// ref marks a reference proxy that does not route (everything goes
	// to sink a): no memory or start-up figures; relayOnly ones take no
	// part in the connection runs either.
	ref, relayOnly bool
}

// freePort is a free port on host, as host:port.
func freePort(host string) string {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func main() {
	list20k := flag.String("list20k", "", "source list for the load runs")
	listFull := flag.String("listfull", "", "full seed list for memory and start-up")
	splitterBin := flag.String("splitter", "", "examples/splitter binary")
	baseBin := flag.String("base", "", "another examples/splitter binary (e.g. main's) for the splitter-base peer: an A/B yardstick in the same run")
	trials := flag.Int("trials", 3, "trials per peer and concurrency")
	dur := flag.Duration("dur", 3*time.Second, "duration of one trial")
	only := flag.String("peers", "direct,haproxy,nginx,splitter,splitter-goroutine,goproxy,socat", "the peers to run, comma-separated (for profiling one)")
	goproxyAddrs := flag.String("goproxy", "", "LISTEN=TARGET: run as the naive Go proxy reference (used by smtpbench itself)")
	med := flag.Bool("median", false, "print the cell-by-cell median of the tables in the files named as arguments (runs of run.sh)")
	concList := flag.String("conc", "1,16,128", "client concurrencies, comma-separated; empty for none")
	relays := flag.Int("relays", 5, "10 MiB relays per peer")
	trialsOut := flag.String("trialsout", "", "also write every load trial's figures to this file, tab-separated (conc, trial, peer, conn/s, p50 ms, p99 ms, CPU µs/conn): per-trial ratios between peers measured minutes apart at most")
	linkNS := flag.String("netns", "", "link mode (../link.sh): relays only, from a client in this network namespace (ip netns), over a veth pair shaped to each of -rates")
	linkAddr := flag.String("linkaddr", "10.201.0.1", "link mode: this namespace's veth address, where the peers and sink a listen")
	linkSrc := flag.String("linksrc", "10.201.0.2", "link mode: the client's address in -netns")
	linkDev := flag.String("linkdev", "", "link mode: the client's veth in -netns, its egress shaped by tc tbf")
	rateList := flag.String("rates", "1gbit,2.5gbit,5gbit,6gbit,7gbit,8gbit,9gbit,10gbit,none", "link mode: the link's rates in tc's units (kbit, mbit, gbit), none for the unshaped veth")
	burst := flag.Duration("burst", 300*time.Microsecond, "link mode: tbf's bucket, as time at the rate (at least 128 KiB; 300µs held the direct relay within 1–2% of the rate here, 100µs fell 7% short at 10 Gbit/s, 1ms overshot by 5–10%)")
	flag.Parse()
	if *med {
		check(medianTables(flag.Args()))
		return
	}
	if *goproxyAddrs != "" {
		l, t, _ := strings.Cut(*goproxyAddrs, "=")
		check(goProxy(l, t))
		return
	}
	var concs []int
	for _, f := range strings.FieldsFunc(*concList, func(r rune) bool { return r == ',' }) {
		c, err := strconv.Atoi(f)
		if err != nil || c < 1 {
			check(fmt.Errorf("-conc %q: want positive integers", *concList))
		}
		concs = append(concs, c)
	}
	// Link mode: the peers listen on the veth's address, where the client
	// in the other namespace reaches them.
	host := "127.0.0.1"
	var link *linkBench
	if *linkNS != "" {
		rates, err := parseRates(*rateList)
		check(err)
		ns, err := os.Open("/run/netns/" + *linkNS)
		check(err)
		defer ns.Close()
		src := net.ParseIP(*linkSrc)
		if src == nil || *linkDev == "" || net.ParseIP(*linkAddr) == nil {
			check(fmt.Errorf("-netns needs -linkdev, and addresses in -linkaddr and -linksrc"))
		}
		host = *linkAddr
		link = &linkBench{ns: ns, nsName: *linkNS, dev: *linkDev, src: src, rates: rates, burst: *burst}
	}
	tmp, err := os.MkdirTemp("", "smtpbench")
	check(err)
	defer os.RemoveAll(tmp)

	var sinks [3]*sink
	for i, n := range []string{"a", "b", "strict"} {
		sinks[i], err = newSink(n)
		check(err)
	}
	a, b, strict := sinks[0].addr(), sinks[1].addr(), sinks[2].addr()
	directAddr := a
	if link != nil {
		directAddr, err = sinks[0].listenAlso(host)
		check(err)
	}

	haproxy := func(addr string) func(string) (*exec.Cmd, error) {
		return func(list string) (*exec.Cmd, error) {
			cfg := filepath.Join(tmp, "haproxy.cfg")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend mx
    bind %s
    acl english src -f %s
    acl upper src %s
    use_backend strict if !english
    use_backend b if upper
    default_backend a
backend a
    server a %s
backend b
    server b %s
backend strict
    server strict %s
`, addr, list, strings.Join(upper, " "), a, b, strict)), 0o644)
			cmd := exec.Command("haproxy", "-db", "-f", cfg)
			cmd.Stderr = os.Stderr
			return cmd, cmd.Start()
		}
	}
	nginx := func(addr string) func(string) (*exec.Cmd, error) {
		return func(list string) (*exec.Cmd, error) {
			geo := filepath.Join(tmp, "geo.conf")
			data, err := os.ReadFile(list)
			if err != nil {
				return nil, err
			}
			var g strings.Builder
			for _, l := range strings.Fields(string(data)) {
				if !strings.HasPrefix(l, "#") {
					g.WriteString(l + " 1;\n")
				}
			}
			os.WriteFile(geo, []byte(g.String()), 0o644)
			var up strings.Builder
			for _, p := range upper {
				up.WriteString(p + " 1; ")
			}
			cfg := filepath.Join(tmp, "nginx.conf")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
master_process off;
daemon off;
pid %s/nginx.pid;
error_log stderr error;
events { worker_connections 8000; }
stream {
    geo $english { default 0; include %s; }
    geo $upper { default 0; %s}
    map "$english$upper" $backend { "10" a; "11" b; default strict; }
    upstream a { server %s; }
    upstream b { server %s; }
    upstream strict { server %s; }
    server { listen %s; proxy_pass $backend; proxy_connect_timeout 5s; proxy_timeout 300s; }
}
`, tmp, geo, up.String(), a, b, strict, addr)), 0o644)
			cmd := exec.Command("nginx", "-p", tmp, "-c", cfg)
			cmd.Stderr = os.Stderr
			return cmd, cmd.Start()
		}
	}
	split := func(bin *string, addr, engine string) func(string) (*exec.Cmd, error) {
		return func(list string) (*exec.Cmd, error) {
			policy, err := splitterPolicy(addr, a, b, strict, list)
			if err != nil {
				return nil, err
			}
			cmd := exec.Command(*bin, "-policy", policy, "-engine", engine)
			cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
			cmd.Stderr = os.Stderr
			return cmd, cmd.Start()
		}
	}
	// The references: a naive Go proxy (io.Copy both ways, which splices;
	// GOMAXPROCS=1) and socat (a process per connection, read/write with
	// 64 KiB buffers), both straight to sink a.
	self, err := os.Executable()
	check(err)
	goproxy := func(addr string) func(string) (*exec.Cmd, error) {
		return func(string) (*exec.Cmd, error) {
			cmd := exec.Command(self, "-goproxy", addr+"="+a)
			cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
			cmd.Stderr = os.Stderr
			return cmd, cmd.Start()
		}
	}
	socat := func(addr string) func(string) (*exec.Cmd, error) {
		return func(string) (*exec.Cmd, error) {
			host, port, _ := net.SplitHostPort(addr)
			cmd := exec.Command("socat", "-b", "65536", "TCP-LISTEN:"+port+",bind="+host+",reuseaddr,fork", "TCP:"+a)
			cmd.Stderr = os.Stderr
			return cmd, cmd.Start()
		}
	}
	peers := []*peer{
		{key: "direct", name: "direct (floor)", addr: directAddr},
		{key: "haproxy", name: "HAProxy " + version("haproxy", "-v"), addr: freePort(host)},
		{key: "nginx", name: "nginx stream " + version("nginx", "-v"), addr: freePort(host)},
		{key: "splitter", name: "geosteer splitter, event loop", addr: freePort(host)},
		{key: "splitter-goroutine", name: "geosteer splitter, goroutines", addr: freePort(host)},
		{key: "splitter-base", name: "geosteer splitter, event loop, -base binary", addr: freePort(host)},
		{key: "goproxy", name: "reference: naive Go proxy (io.Copy)", addr: freePort(host), ref: true},
		{key: "socat", name: "reference: socat " + version("socat", "-V"), addr: freePort(host), ref: true, relayOnly: true},
	}
	for _, p := range peers {
		switch p.key {
		case "haproxy":
			p.start = haproxy(p.addr)
		case "nginx":
			p.start = nginx(p.addr)
		case "splitter":
			p.start = split(splitterBin, p.addr, "eventloop")
		case "splitter-goroutine":
			p.start = split(splitterBin, p.addr, "goroutine")
		case "splitter-base":
			if *baseBin != "" {
				p.start = split(baseBin, p.addr, "eventloop")
			}
		case "goproxy":
			p.start = goproxy(p.addr)
		case "socat":
			p.start = socat(p.addr)
		}
	}
	want := strings.Split(*only, ",")
	peers = slices.DeleteFunc(peers, func(p *peer) bool {
		if p.key == "splitter-base" && *baseBin == "" {
			if slices.Contains(want, p.key) {
				fmt.Fprintln(os.Stderr, "smtpbench: no -base binary, splitter-base is left out")
			}
			return true
		}
		if p.key == "socat" && slices.Contains(want, "socat") {
			if _, err := exec.LookPath("socat"); err != nil {
				fmt.Fprintln(os.Stderr, "smtpbench: no socat, its reference is left out")
				return true
			}
		}
		return !slices.Contains(want, p.key)
	})
	if len(peers) == 0 {
		check(fmt.Errorf("-peers %q: want some of direct,haproxy,nginx,splitter,splitter-goroutine,splitter-base,goproxy,socat", *only))
	}
	procs := slices.DeleteFunc(slices.Clone(peers), func(p *peer) bool { return p.start == nil })
	routers := slices.DeleteFunc(slices.Clone(procs), func(p *peer) bool { return p.ref })
	loaded := slices.DeleteFunc(slices.Clone(peers), func(p *peer) bool { return p.relayOnly })

	if link != nil {
		err := startAll(procs, *list20k)
		if err == nil {
			err = link.run(os.Stdout, peers, *relays)
		}
		for _, p := range procs {
			stop(p.cmd)
		}
		check(err)
		return
	}

	// Start-up time and memory with the full list, then restart with the
	// 20k list for the load runs.
	fullRSS, fullStart := map[string]float64{}, map[string]time.Duration{}
	for _, p := range routers {
		var ts []time.Duration
		for range 3 {
			t0 := time.Now()
			cmd, err := p.start(*listFull)
			check(err)
			_, err = waitReady(p.addr)
			check(wrap(p.name, err))
			ts = append(ts, time.Since(t0))
			// Resident memory once settled: a splitter that answers
			// while it is still returning its load's garbage to the OS
			// (debug.FreeOSMemory) would otherwise be caught before.
			time.Sleep(300 * time.Millisecond)
			fullRSS[p.name] = rss(cmd.Process.Pid)
			stop(cmd)
		}
		fullStart[p.name] = median(ts)
	}
	startup := map[string]time.Duration{}
	for _, p := range procs {
		t0 := time.Now()
		p.cmd, err = p.start(*list20k)
		check(err)
		_, err = waitReady(p.addr)
		check(wrap(p.name, err))
		startup[p.name] = time.Since(t0)
	}
	defer func() {
		for _, p := range procs {
			stop(p.cmd)
		}
	}()

	var tw *os.File
	if *trialsOut != "" {
		tw, err = os.Create(*trialsOut)
		check(err)
		defer tw.Close()
		fmt.Fprintln(tw, "conc\ttrial\tpeer\tconn_s\tp50_ms\tp99_ms\tcpu_us")
	}
	res := map[string]map[int]*result{}
	for _, p := range peers {
		res[p.name] = map[int]*result{}
	}
	for _, c := range concs {
		for t := range *trials {
			for i := range loaded {
				p := loaded[(i+t)%len(loaded)] // rotate the order between trials
				r := res[p.name][c]
				if r == nil {
					r = &result{}
					res[p.name][c] = r
				}
				if p.cmd != nil { // for syscalls.sh, which attaches to the process
					fmt.Fprintf(os.Stderr, "smtpbench: load %s pid %d c=%d for %v\n", p.key, p.cmd.Process.Pid, c, *dur)
				}
				cpu0 := cpuTime(p.cmd)
				n, lat, errs := sessions(p.addr, c, *dur)
				cpu1 := cpuTime(p.cmd)
				r.rate = append(r.rate, float64(n)/dur.Seconds())
				r.p50 = append(r.p50, ms(percentile(lat, 0.50)))
				r.p99 = append(r.p99, ms(percentile(lat, 0.99)))
				cpu := 0.0
				if n > 0 {
					cpu = (cpu1 - cpu0).Seconds() * 1e6 / float64(n)
					r.cpu = append(r.cpu, cpu)
				}
				if tw != nil {
					fmt.Fprintf(tw, "%d\t%d\t%s\t%.1f\t%.3f\t%.3f\t%.1f\n", c, t, p.key, r.rate[len(r.rate)-1], r.p50[len(r.p50)-1], r.p99[len(r.p99)-1], cpu)
				}
				r.errs += errs
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	// Relay throughput: 10 MiB from an English source to a, 5 times each,
	// and the proxy's CPU time over all of them.
	thr := map[string][]float64{}
	relayCPU, relaySelf := map[string]time.Duration{}, map[string]time.Duration{}
	me := os.Getpid()
	for t := range *relays {
		for i := range peers {
			p := peers[(i+t)%len(peers)]
			cpu0, self0 := cpuTime(p.cmd), schedCPU(me)
			d, err := relay(p.addr, net.IPv4(127, 1, 0, 1), nil)
			check(wrap(p.name, err))
			relayCPU[p.name] += cpuTime(p.cmd) - cpu0
			relaySelf[p.name] += schedCPU(me) - self0
			thr[p.name] = append(thr[p.name], 10/d.Seconds())
		}
	}
	loadRSS := map[string]float64{}
	for _, p := range routers {
		loadRSS[p.name] = rss(p.cmd.Process.Pid)
	}

	direct := medianF(thr["direct (floor)"])
	if len(concs) > 0 {
		table(loaded, concs, res, thr, direct, loadRSS, fullRSS, startup, fullStart)
	}
	if *relays == 0 {
		return
	}
	// CPU per relay: the proxy's, and the client's and sink's (this
	// process's), means over the relays; socat's per-connection processes
	// are not counted.
	fmt.Printf("\n| relay of 10 MiB, median of %d | MiB/s | ×direct | CPU ms per 10 MiB: proxy | client and sink | together |\n|---|---:|---:|---:|---:|---:|\n", *relays)
	for _, p := range peers {
		t := medianF(thr[p.name])
		ratio := "–"
		if direct > 0 {
			ratio = fmt.Sprintf("%.2f", t/direct)
		}
		n := float64(*relays)
		self := ms(relaySelf[p.name]) / n
		switch {
		case p.key == "socat":
			fmt.Printf("| %s | %.0f | %s | – | %.1f | – |\n", p.name, t, ratio, self)
		case p.cmd == nil:
			fmt.Printf("| %s | %.0f | %s | – | %.1f | %.1f |\n", p.name, t, ratio, self, self)
		default:
			proxy := ms(relayCPU[p.name]) / n
			fmt.Printf("| %s | %.0f | %s | %.1f | %.1f | %.1f |\n", p.name, t, ratio, proxy, self, proxy+self)
		}
	}
}

// startAll starts the peers' processes with list and waits until each
// answers; on an error it stops those it started.
func startAll(procs []*peer, list string) error {
	for _, p := range procs {
		cmd, err := p.start(list)
		if err == nil {
			p.cmd = cmd
			_, err = waitReady(p.addr)
		}
		if err != nil {
			for _, q := range procs {
				stop(q.cmd)
			}
			return wrap(p.name, err)
		}
	}
	return nil
}

// table prints the main table: connections, latency, CPU, relay, memory
// and start-up, one row per loaded peer.
func table(loaded []*peer, concs []int, res map[string]map[int]*result, thr map[string][]float64, direct float64,
	loadRSS, fullRSS map[string]float64, startup, fullStart map[string]time.Duration) {
	cpuConc := concs[len(concs)/2] // c=16 in the default run
	var hdr, rule strings.Builder
	hdr.WriteString("| peer |")
	rule.WriteString("|---|")
	for i, c := range concs {
		if i == 0 {
			fmt.Fprintf(&hdr, " conn/s c=%d |", c)
		} else {
			fmt.Fprintf(&hdr, " c=%d |", c)
		}
	}
	for i, c := range concs {
		if i == 0 {
			fmt.Fprintf(&hdr, " p50 / p99 ms c=%d |", c)
		} else {
			fmt.Fprintf(&hdr, " c=%d |", c)
		}
	}
	fmt.Fprintf(&hdr, " CPU µs/conn (c=%d) | relay MiB/s (×direct) | RSS MiB 20k list, after load | RSS MiB full list | start-up ms 20k / full | errors |", cpuConc)
	fmt.Println(hdr.String())
	fmt.Println(rule.String() + strings.Repeat("---:|", 2*len(concs)+6))
	for _, p := range loaded {
		r := res[p.name]
		fmt.Printf("| %s |", p.name)
		errs := 0
		for _, c := range concs {
			fmt.Printf(" %.0f |", medianF(r[c].rate))
			errs += r[c].errs
		}
		for _, c := range concs {
			fmt.Printf(" %.2f / %.2f |", medianF(r[c].p50), medianF(r[c].p99))
		}
		t := medianF(thr[p.name])
		ratio := "–"
		if direct > 0 {
			ratio = fmt.Sprintf("%.2f", t/direct)
		}
		if p.cmd == nil {
			fmt.Printf(" – | %.0f (%s) | – | – | – | %d |\n", t, ratio, errs)
			continue
		}
		if p.ref {
			fmt.Printf(" %.0f | %.0f (%s) | – | – | – | %d |\n", medianF(r[cpuConc].cpu), t, ratio, errs)
			continue
		}
		fmt.Printf(" %.0f | %.0f (%s) | %.1f | %.1f | %.0f / %.0f | %d |\n", medianF(r[cpuConc].cpu), t, ratio,
			loadRSS[p.name], fullRSS[p.name], ms(startup[p.name]), ms(fullStart[p.name]), errs)
	}
}

// splitterPolicy writes the policy examples/splitter enforces: the same
// as the other peers' configurations. Weights 509:515 put the boundary of
// the split at 127.64.0.0 (509/1024 of the IPv4 space).
func splitterPolicy(addr, a, b, strict, list string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	// steer reads lists relative to the policy's directory, and only there.
	f := filepath.Join(filepath.Dir(list), "policy-"+filepath.Base(list)+".yaml")
	return f, os.WriteFile(f, []byte(fmt.Sprintf(`targets:
  a: {ipv4: "%s"}
  b: {ipv4: "%s"}
  strict: {ipv4: "%s", strict: true}
entry_points:
  mx: {ipv4: %s, ports: [%s]}
groups:
  english: {lists: ["%s"]}
rules:
  - {name: foreign, from: not english, to: strict}
  - {name: split, split: [a, b], weights: [509, 515]}
`, a, b, strict, host, port, filepath.Base(list))), 0o644)
}

func version(cmd, flag string) string {
	out, _ := exec.Command(cmd, flag).CombinedOutput()
	for _, f := range strings.Fields(string(out)) {
		if f != "" && (f[0] >= '0' && f[0] <= '9' || strings.HasPrefix(f, "nginx/")) {
			return strings.TrimPrefix(strings.SplitN(f, "-", 2)[0], "nginx/")
		}
	}
	return ""
}

func stop(cmd *exec.Cmd) {
	if cmd == nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// cpuTime is the process's CPU time, all threads, to the nanosecond
// (schedCPU; /proc's utime and stime come in 10 ms ticks, too coarse for a
// relay of a few milliseconds). On loopback it includes the receiving
// side's TCP work, which the kernel runs in the sender's context and
// charges to it.
func cpuTime(cmd *exec.Cmd) time.Duration {
	if cmd == nil {
		return 0
	}
	return schedCPU(cmd.Process.Pid)
}

// rss is the process's resident set in MiB.
func rss(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

func medianF(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	x = slices.Clone(x)
	slices.Sort(x)
	return x[len(x)/2]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtpbench:", err)
		os.Exit(1)
	}
}

func wrap(name string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
