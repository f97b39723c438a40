// Package geosteer steers inbound SMTP connections by where the sender is.
//
// A mail operator describes one policy — MX split across servers, senders
// outside a set of countries sent to a strict server, hand-made overrides —
// and geosteer compiles it once and enforces it through pluggable backends
// that provably agree: MikroTik RouterOS, Linux nftables, or an in-process Go
// connection splitter.
//
// Data flows one way, from country data to enforcement:
//
//	geo → cidr → steer → backend
//
// Package [github.com/geosteer/geosteer/cidr] holds IPv4/IPv6 prefix sets,
// the parsing of operators' prefix lists, aggregation to the minimal CIDR
// list, set algebra and compiled lookup tables; it imports no other public
// package of the project (only internal/addrword, the in-place read of a
// netip.Addr's words that its lookups and steer's router share). Package geo turns country databases (MaxMind DB, CSV, zone
// files, RIR statistics) into cidr sets; steer compiles the policy into a
// backend-neutral plan; the backend packages render and apply the plan. Each
// imports only packages before it in that chain, and cidr.
//
// The root package holds only this overview.
package geosteer
