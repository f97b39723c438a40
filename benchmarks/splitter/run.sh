#!/usr/bin/env bash
# Side-by-side SMTP splitting on loopback: HAProxy (TCP mode, src ACL
# file), nginx stream (geo map), geosteer's splitter (GOMAXPROCS=1) and a
# direct connection, all with the same list, one worker each. Prints the
# markdown table of benchmarks/README.md ("## splitter").
# Needs root for apt-get if the peers are missing; everything runs on
# loopback. Usage: benchmarks/splitter/run.sh [TRIALS] [DURATION] [smtpbench flags]
# (e.g. -peers splitter -conc 16 -relays 0 to load one peer for profiling;
# -peers haproxy,nginx,splitter,splitter-base -base OLD/splitter for an A/B run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
trials=${1:-3}
dur=${2:-3s}
shift $(($# < 2 ? $# : 2))
db=${GEOSTEER_SHARED_DATA:-$here/../../../shared/data}/geo-whois-asn-country.mmdb
if ! command -v haproxy >/dev/null || ! command -v nginx >/dev/null || ! command -v socat >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
	apt-get install -y haproxy nginx libnginx-mod-stream socat >&2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here/.."
(cd .. && go build -o "$tmp/splitter" ./examples/splitter && go build -o "$tmp/cidrmerge" ./examples/cidrmerge)
go build -o "$tmp/smtpbench" ./splitter/smtpbench
# The six "english" countries' IPv4 networks, aggregated (111,906 prefixes:
# the full seed list), and its first 20,000; both with 127.0.0.0/9 so that
# loopback sources in 127.0-127 count as English (and with $LIST_EXTRA's
# prefixes: link.sh's client).
go run ./cmd/netlist -family 4 "$db" US CA GB AU NZ IE | "$tmp/cidrmerge" -q >"$tmp/full.txt"
head -n 20000 "$tmp/full.txt" >"$tmp/20k.txt"
printf '%s\n' 127.0.0.0/9 ${LIST_EXTRA:-} | tee -a "$tmp/full.txt" >>"$tmp/20k.txt"
echo "lists: $(wc -l <"$tmp/20k.txt") and $(wc -l <"$tmp/full.txt") entries; $(nproc) CPUs; $(uname -r)" >&2
"$tmp/smtpbench" -list20k "$tmp/20k.txt" -listfull "$tmp/full.txt" -splitter "$tmp/splitter" -trials "$trials" -dur "$dur" "$@"
