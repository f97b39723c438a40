#!/usr/bin/env bash
# System calls per connection, by kind, of one peer under the harness's
# load: strace -f -c attached to the proxy for one trial (less a second
# at each end), divided by the connections it dialled (connect calls).
# strace slows the proxy down; the counts per connection are what matters.
# Usage: benchmarks/splitter/syscalls.sh PEER [CONC] [DURATION] [run.sh flags, e.g. -base BIN]
# (SYSCALLS_TOOL=perf: perf stat instead of strace, totals of the main kinds).
# (PEER: haproxy, nginx, splitter, splitter-goroutine or goproxy; default c=16 for 10s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peer=${1:?usage: syscalls.sh PEER [CONC] [DURATION]}
conc=${2:-16}
dur=${3:-10}
command -v strace >/dev/null || apt-get install -y strace >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/run.sh" 1 "${dur}s" -peers "$peer" -conc "$conc" -relays 0 "${@:4}" 2>"$tmp/log" >/dev/null &
run=$!
pid=
while [ -z "$pid" ] && kill -0 "$run" 2>/dev/null; do
	sleep 0.1
	pid=$(sed -n "s/^smtpbench: load $peer pid \([0-9]*\) .*/\1/p" "$tmp/log" | head -n 1)
done
[ -n "$pid" ] || { cat "$tmp/log" >&2; exit 1; }
sleep 1
if [ "${SYSCALLS_TOOL:-strace}" = perf ]; then
	# perf stat barely slows the proxy (strace makes every poll find
	# events); it counts the main kinds only, plus CPU and switches.
	perf stat -x, -o "$tmp/perf" -p "$pid" -e 'syscalls:sys_enter_connect,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_pwait2,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_accept4,context-switches,task-clock' -- sleep $((dur - 2)) 2>/dev/null
	wait
	awk -F, -v peer="$peer" -v conc="$conc" '
		$3 ~ /connect/ { conns = $1 }
		$3 != "" && $1 ~ /^[0-9.]+$/ { v[$3] = $1; order[n++] = $3 }
		END {
			printf "%s, c=%s: %d connections (perf stat)\n| event | per connection |\n|---|---:|\n", peer, conc, conns
			for (i = 0; i < n; i++) if (order[i] !~ /connect/) {
				k = order[i]; name = k; sub(/^syscalls:sys_enter_/, "", name); sub(/^raw_syscalls:sys_enter/, "all system calls", name)
				if (k == "task-clock") printf "| CPU µs | %.1f |\n", v[k] * 1000 / conns
				else printf "| %s | %.2f |\n", name, v[k] / conns
			}
		}' "$tmp/perf"
	exit
fi
timeout -s INT $((dur - 2)) strace -f -c -o "$tmp/strace" -p "$pid" 2>/dev/null || true
wait
awk -v peer="$peer" -v conc="$conc" '
	$NF == "connect" { conns = $4 }
	$1 ~ /^[0-9.]+$/ && NF >= 5 { calls[$NF] = $4; if ($NF != "total") errs[$NF] = (NF == 6 ? $5 : 0) }
	END {
		printf "%s, c=%s: %d connections\n| system call | per connection | of which failed |\n|---|---:|---:|\n", peer, conc, conns
		n = 0
		for (k in calls) if (k != "total") order[n++] = k
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (calls[order[j]] > calls[order[i]]) { t = order[i]; order[i] = order[j]; order[j] = t }
		for (i = 0; i < n; i++) if (calls[order[i]] / conns >= 0.005) printf "| %s | %.2f | %.2f |\n", order[i], calls[order[i]] / conns, errs[order[i]] / conns
		printf "| total | %.1f | |\n", calls["total"] / conns
	}' "$tmp/strace"
