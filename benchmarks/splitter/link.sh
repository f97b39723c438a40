#!/usr/bin/env bash
# Relay throughput over a rate-limited link: the client of the 10 MiB relay
# sits in its own network namespace, joined to this one by a veth pair
# whose client end's egress (the message's direction) is shaped with tc
# tbf to each rate in turn; the peers (HAProxy, nginx, geosteer's two
# engines, the naive Go proxy) and the direct path's sink listen on this
# end. Prints the markdown table of benchmarks/README.md ("## splitter",
# "Relay over a rate-limited link"). Needs root, ip and tc (iproute2);
# touches nothing but the namespace and veth pair it creates, which a trap
# deletes however it ends.
# Usage: benchmarks/splitter/link.sh [RELAYS] [RATES] [smtpbench flags]
# (RELAYS per peer and rate, default 30; RATES in tc's units, comma-separated,
# none for the unshaped veth; default 1, 2.5, 5, 6, 7, 8, 9 and 10 gbit, and none;
# smtpbench flags e.g. -peers direct,splitter,socat or -burst 1ms).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
relays=${1:-30}
rates=${2:-1gbit,2.5gbit,5gbit,6gbit,7gbit,8gbit,9gbit,10gbit,none}
shift $(($# < 2 ? $# : 2))
if [ "$(id -u)" != 0 ]; then
	echo "link.sh: skipped: needs root (network namespace, veth, tc)" >&2
	exit 0
fi
for c in ip tc; do
	if ! command -v $c >/dev/null; then
		echo "link.sh: skipped: no $c (Debian package iproute2)" >&2
		exit 0
	fi
done
# A private /30 of our own: 10.201.0.1 here, 10.201.0.2 the client's.
net=10.201.0.0/30 host=10.201.0.1 cli=10.201.0.2
if [ -n "$(ip -4 -o addr show to $net)" ]; then
	echo "link.sh: $net is already in use here (another link.sh?): $(ip -4 -o addr show to $net)" >&2
	exit 1
fi
ns=gsbench-link-$$ hdev=gsl$$h cdev=gsl$$c
cleanup() {
	# Deleting the namespace deletes the veth pair (both ends) with it.
	ip netns del "$ns" 2>/dev/null || true
	ip link del "$hdev" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns"
ip link add "$hdev" type veth peer name "$cdev" netns "$ns"
ip addr add $host/30 dev "$hdev"
ip link set "$hdev" up
ip -n "$ns" addr add $cli/30 dev "$cdev"
ip -n "$ns" link set lo up
ip -n "$ns" link set "$cdev" up
# No cached ssthresh or RTT from an earlier relay's connection (the
# client's namespace only; the sender is the client).
ip netns exec "$ns" sysctl -qw net.ipv4.tcp_no_metrics_save=1
echo "link: $ns ($cdev $cli) <-> $hdev $host;$(ip -d -n "$ns" link show "$cdev" | grep -o ' mtu [0-9]*\| gso_max_size [0-9]*\| tso_max_size [0-9]*' | tr -d '\n'); $(uptime)" >&2
LIST_EXTRA=$net "$here/run.sh" 1 1s -conc "" -relays "$relays" \
	-peers direct,haproxy,nginx,splitter,splitter-goroutine,goproxy \
	-netns "$ns" -linkdev "$cdev" -linkaddr $host -linksrc $cli -rates "$rates" "$@"
echo "link: done; $(uptime)" >&2
