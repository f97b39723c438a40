// Package routerostest provides a simulated MikroTik RouterOS router that
// speaks the binary API (TCP, optionally API-SSL), for tests and benchmarks
// of RouterOS backends, in the spirit of net/http/httptest.
//
// Start one with [NewServer], connect any API client to [Server.Addr], and
// assert on the router's state with [Server.AddressList], [Server.NATRules]
// and [Server.Route], which evaluates the router's own dstnat rules so a test
// can prove where every source address is steered.
//
// # What is simulated
//
// Wire: all five word-length forms are accepted, replies use the minimal
// form, a first length byte >= 0xF8 ends the session with !fatal. "=k=v"
// splits on the first '='; empty sentences are ignored; ".tag" is echoed on
// every reply sentence, and only when it was sent. Replies: !re, !done (with
// =ret= after add and print =count-only=), !trap (+ =category=) then !done,
// !empty (Options.EmptyReplies, RouterOS 7.18+), !fatal <reason> then close.
//
// Sessions: /login (plain, and the pre-6.43 MD5 challenge); any other
// command before login ends the session with "!fatal not logged in"; /quit;
// /cancel (=tag= or all) of running commands (listen, or a FaultHang);
// Options.MaxSessions; many tagged commands in flight per connection.
//
// Menus, each under /ip/firewall and /ipv6/firewall: address-list (add,
// print/getall with .proplist, count-only and the query stack machine,
// remove with comma-separated ids, set with =!prop= unset, unset, enable,
// disable, listen) and nat (the same plus place-before on add, move with
// =numbers= and =destination=). /system/resource/print answers a few fields.
// Other command words get RouterOS's "no such command" traps.
//
// Address lists: ids are "*HEX", increasing, never reused, one counter per
// menu (DNS children take ids from it too); print keeps insertion order;
// a duplicate add (same list, same normalised address) traps "failure:
// already have such entry", checked in O(1); [Server.Seed] can plant
// duplicates as old imports leave them. Normalisation: IPv4 /32 prints
// without suffix, host bits are cleared, IPv4 ranges that are exactly one
// CIDR print as it, other ranges as "a-b"; IPv6 keeps /128; an address of the
// other family traps "failure: X is not a valid dns name"; DNS names become a
// static entry plus dynamic children from Options.DNS. Entries with a
// timeout show dynamic=true and a timeout field; they never expire.
//
// NAT: one global rule order; place-before is not stored; dst-port and
// src-port require a port protocol; '!' values are stored verbatim; PCC
// syntax is validated.
//
// Timing: Options.CommandCost is serialized router CPU per command (all
// connections share one CPU); Options.Latency delays every reply by a fixed
// round trip without serializing pipelined commands. Options.Fault injects
// disconnects, !fatal, slow reads and hung commands at chosen commands.
// Server.Restart is a reboot: connections drop, dynamic entries vanish
// and the rest are numbered again from *1 (unconfirmed: that RouterOS
// renumbers; a client must not assume it does not).
//
// Behaviour not checked against a real router is marked "unconfirmed:" in
// the source; most of it is trap wording and categories.
//
// # Testing the simulator
//
// go test runs the wire codec tests, client-level tests through go-routeros
// v3.0.1, a 100,000-entry load (skipped with -short) and a cross-check with
// Debian's python3-librouteros run by /usr/bin/python3 (skipped when absent,
// failing in CI). FuzzServer feeds arbitrary bytes after a login:
//
//	go test -run '^$' -fuzz FuzzServer -fuzztime 60s ./backend/routeros/routerostest
//
// # Clients
//
// go-routeros v3.0.1's sync client works; dial the connection yourself and
// set a deadline, since its contexts do not bound /login. For pipelining use
// its proto package (write tagged sentences, match replies by tag) rather
// than Async, which has known races.
package routerostest
