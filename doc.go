// Package geosteer steers inbound SMTP connections by where the sender is.
//
// A mail operator describes one policy — MX split across servers, senders
// outside a set of countries sent to a strict server, hand-made overrides —
// and geosteer compiles it once and enforces it through pluggable backends
// that provably agree: MikroTik RouterOS, Linux nftables, or an in-process Go
// connection splitter.
//
// Data flows one way through the packages, and none imports one to its right:
//
//		geo → cidr → steer → backend
//
//	  - [github.com/geosteer/geosteer/cidr]: IPv4/IPv6 prefix sets, parsing of
//	    operators' prefix lists, aggregation to the minimal CIDR list, set
//	    algebra, and compiled lookup tables.
//	  - geo: country data sources (MaxMind DB, CSV, zone files, RIR statistics).
//	  - steer: the policy, its file format and its compilation into a plan.
//	  - backend: rendering and applying the plan (routeros, nftables, splitter).
//
// The root package holds only this overview.
package geosteer
