#!/usr/bin/env bash
# Whole-process comparison of examples/cidrmerge with FireHOL's iprange (C)
# on inputs made from the shared database: the median CPU time (user+system,
# from wait4) of RUNS runs each, interleaved, and whether the outputs match.
# CPU time rather than wall time because these machines are shared.
# Needs iprange: apt-get install -y iprange
# Usage: benchmarks/cidrmerge.sh [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${1:-21}
db=${GEOSTEER_SHARED_DATA:-$here/../../shared/data}/geo-whois-asn-country.mmdb
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here"
go run ./cmd/netlist -family 4 "$db" US CA GB AU NZ IE >"$tmp/A.txt"
go run ./cmd/netlist -family 4 "$db" >"$tmp/B.txt"
go run ./cmd/netlist -family 4 -shuffle 1 "$db" >"$tmp/D.txt"
(cd .. && go build -o "$tmp/cidrmerge" ./examples/cidrmerge)
echo "| input | lines | prefixes out | cidrmerge CPU ms | iprange CPU ms | iprange/cidrmerge | outputs |"
echo "|---|---:|---:|---:|---:|---:|---|"
# iprange 1.0.4 is IPv4-only (on the IPv6 input C it waits forever), so C
# is not compared here; the Go benchmarks compare C against netipx.
for in in A B D; do
	"$tmp/cidrmerge" -q "$tmp/$in.txt" >"$tmp/$in.geosteer"
	timeout 60 iprange "$tmp/$in.txt" >"$tmp/$in.iprange" 2>/dev/null </dev/null || true
	# iprange prints a single address without /32; compare with that undone.
	if awk '!/\// {$0 = $0 "/32"} 1' "$tmp/$in.iprange" | cmp -s - "$tmp/$in.geosteer"; then same=identical; else same=differ; fi
	python3 - "$runs" "$in" "$(wc -l <"$tmp/$in.txt")" "$(wc -l <"$tmp/$in.geosteer")" "$same" \
		"$tmp/cidrmerge -q $tmp/$in.txt" "iprange $tmp/$in.txt" <<'PY'
import os, statistics, subprocess, sys
runs, name, lines, out, same = int(sys.argv[1]), *sys.argv[2:6]
cmds = [c.split() for c in sys.argv[6:]]
cpu = [[] for _ in cmds]
for _ in range(runs):
    for i, c in enumerate(cmds):
        p = subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        cpu[i].append((ru.ru_utime + ru.ru_stime) * 1000)
g, i = statistics.median(cpu[0]), statistics.median(cpu[1])
print(f"| {name} | {lines} | {out} | {g:.0f} | {i:.0f} | {i/g:.2f} | {same} |")
PY
done
