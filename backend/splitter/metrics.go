package splitter

import (
	"cmp"
	"expvar"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// ruleStats are the counters of one rule, kept by rule name across reloads.
type ruleStats struct {
	name      string
	conns     atomic.Uint64 // connections the rule decided
	relayed   atomic.Uint64 // of those, relayed to some target
	failovers atomic.Uint64 // relayed to another target than the rule's
	failures  atomic.Uint64 // no target accepted: the client got 421
	bytesIn   atomic.Uint64 // client to server
	bytesOut  atomic.Uint64 // server to client
}

// RuleStats are a snapshot of one rule's counters.
type RuleStats struct {
	Rule                string
	Conns, Relayed      uint64
	Failovers, Failures uint64
	BytesIn, BytesOut   uint64 // in: client to server; out: server to client
}

// TargetStats are a snapshot of one target's counters and health.
type TargetStats struct {
	Target            string
	Addr              netip.AddrPort
	Up                bool
	Conns             uint64 // connections relayed to it
	DialFailures      uint64
	BytesIn, BytesOut uint64
}

// Stats are a snapshot of a splitter's counters. Counters only grow; rules
// and targets removed by a reload keep their last values.
type Stats struct {
	Accepted uint64 // connections accepted
	Active   int64  // connections open now, tarpitted ones included
	// Rejected counts connections answered with 421 and closed, by reason:
	// "max_conns", "max_per_source", "no_route", "no_target", and
	// "proxy_header" (closed without a reply: a trusted front's bad header).
	Rejected map[string]uint64
	Timeouts map[string]uint64 // sessions closed by "idle" or "session" timeout
	Reloads  uint64
	Rules    []RuleStats   // by rule name
	Targets  []TargetStats // by target name, then address
}

type rejectReason int

const (
	rejectMaxConns rejectReason = iota
	rejectPerSource
	rejectNoRoute
	rejectNoTarget
	rejectProxyHeader
	numRejects
)

var rejectNames = [numRejects]string{"max_conns", "max_per_source", "no_route", "no_target", "proxy_header"}

// admitted is admit's "no rejection".
const admitted rejectReason = -1

// rejectReply is the client's 421 for each reason (none for a bad header:
// the front gets no reply).
var rejectReply = [numRejects][]byte{replyBusy, replyBusy, replyNoRoute, replyNoHost, nil}

// Stats returns a snapshot of the counters.
func (s *Splitter) Stats() Stats {
	st := Stats{
		Accepted: s.accepted.Load(),
		Active:   s.active.Load(),
		Rejected: map[string]uint64{},
		Timeouts: map[string]uint64{"idle": s.idleTimeouts.Load(), "session": s.sessionTimeouts.Load()},
		Reloads:  s.reloads.Load(),
	}
	for i, n := range rejectNames {
		st.Rejected[n] = s.rejected[i].Load()
	}
	s.mu.Lock()
	for _, r := range s.ruleStats {
		st.Rules = append(st.Rules, RuleStats{r.name, r.conns.Load(), r.relayed.Load(),
			r.failovers.Load(), r.failures.Load(), r.bytesIn.Load(), r.bytesOut.Load()})
	}
	for _, t := range s.targets {
		st.Targets = append(st.Targets, TargetStats{t.name, t.addr, t.up.Load(), t.conns.Load(),
			t.dialFailures.Load(), t.bytesIn.Load(), t.bytesOut.Load()})
	}
	s.mu.Unlock()
	slices.SortFunc(st.Rules, func(a, b RuleStats) int { return cmp.Compare(a.Rule, b.Rule) })
	slices.SortFunc(st.Targets, func(a, b TargetStats) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), a.Addr.Compare(b.Addr))
	})
	return st
}

// Var returns the counters as an expvar.Var (a JSON object computed on
// each read), for expvar.Publish under a name of the caller's choice.
func (s *Splitter) Var() expvar.Var {
	return expvar.Func(func() any { return s.Stats() })
}

// MetricsHandler serves the counters in the Prometheus text exposition
// format (version 0.0.4), with the prefix geosteer_splitter_.
func (s *Splitter) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.Stats().WritePrometheus(w)
	})
}

// WritePrometheus writes the snapshot in the Prometheus text format.
func (st Stats) WritePrometheus(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	head := func(name, typ, help string) {
		p("# HELP geosteer_splitter_%s %s\n# TYPE geosteer_splitter_%s %s\n", name, help, name, typ)
	}
	head("accepted_total", "counter", "Connections accepted.")
	p("geosteer_splitter_accepted_total %d\n", st.Accepted)
	head("active_connections", "gauge", "Connections open now, tarpitted ones included.")
	p("geosteer_splitter_active_connections %d\n", st.Active)
	head("reloads_total", "counter", "Plans swapped in.")
	p("geosteer_splitter_reloads_total %d\n", st.Reloads)
	head("rejected_total", "counter", "Connections refused with 421 (or closed), by reason.")
	for _, n := range rejectNames {
		p("geosteer_splitter_rejected_total{reason=%q} %d\n", n, st.Rejected[n])
	}
	head("timeouts_total", "counter", "Sessions closed by a timeout, by kind.")
	for _, n := range []string{"idle", "session"} {
		p("geosteer_splitter_timeouts_total{kind=%q} %d\n", n, st.Timeouts[n])
	}
	rule := []struct {
		name, help string
		get        func(RuleStats) uint64
	}{
		{"rule_connections_total", "Connections decided by the rule.", func(r RuleStats) uint64 { return r.Conns }},
		{"rule_relayed_total", "Connections of the rule relayed to a target.", func(r RuleStats) uint64 { return r.Relayed }},
		{"rule_failovers_total", "Connections of the rule relayed to another target than the rule's.", func(r RuleStats) uint64 { return r.Failovers }},
		{"rule_failures_total", "Connections of the rule no target accepted.", func(r RuleStats) uint64 { return r.Failures }},
		{"rule_received_bytes_total", "Bytes from clients to servers.", func(r RuleStats) uint64 { return r.BytesIn }},
		{"rule_sent_bytes_total", "Bytes from servers to clients.", func(r RuleStats) uint64 { return r.BytesOut }},
	}
	for _, m := range rule {
		head(m.name, "counter", m.help)
		for _, r := range st.Rules {
			p("geosteer_splitter_%s{rule=\"%s\"} %d\n", m.name, labelEscaper.Replace(r.Rule), m.get(r))
		}
	}
	target := []struct {
		name, typ, help string
		get             func(TargetStats) uint64
	}{
		{"target_up", "gauge", "1 if the target passed its last health check.", func(t TargetStats) uint64 {
			if t.Up {
				return 1
			}
			return 0
		}},
		{"target_connections_total", "counter", "Connections relayed to the target.", func(t TargetStats) uint64 { return t.Conns }},
		{"target_dial_failures_total", "counter", "Failed connection attempts to the target.", func(t TargetStats) uint64 { return t.DialFailures }},
		{"target_received_bytes_total", "counter", "Bytes from clients to the target.", func(t TargetStats) uint64 { return t.BytesIn }},
		{"target_sent_bytes_total", "counter", "Bytes from the target to clients.", func(t TargetStats) uint64 { return t.BytesOut }},
	}
	for _, m := range target {
		head(m.name, m.typ, m.help)
		for _, t := range st.Targets {
			p("geosteer_splitter_%s{target=\"%s\",addr=\"%s\"} %d\n", m.name, labelEscaper.Replace(t.Target), t.Addr, m.get(t))
		}
	}
	return err
}

// labelEscaper escapes a label value as the Prometheus text format wants.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
