// Package routeros enforces a [steer.Plan] on MikroTik RouterOS: as .rsc
// scripts to /import ([Script], a [backend.Renderer]), or live over the
// binary API ([Router], a [backend.Applier]; [ApplyAll] for many routers).
//
// Each plan set becomes an address list per family, each plan rule a
// dstnat rule with action=dst-nat (split IPv6 source ranges become one
// rule per prefix). Managed entries carry the comment tag ("geosteer"),
// managed rules "geosteer <rule name>"; nothing else is ever changed.
//
// # Never half-loaded
//
// Lists are versioned: ListPrefix+set+".v4."+generation. New content is
// loaded into a generation no rule uses, checked to be complete, and
// only then are the rules repointed (one "set" per distinct value), after
// which the old generation is removed. [Mode] chooses what happens to the
// old generation (removed, or kept as a standby so the next change costs
// only the difference) or trades atomicity for memory ([InPlace]).
//
// # The API sync
//
// [Router.Apply] dials the router itself (deadlines on connect, TLS and
// login), reads the managed entries with one print per family
// (.proplist plus a ?comment= query) and all NAT rules, diffs, and sends
// only the changes: adds pipelined with up to Window tagged commands in
// flight, removes as comma-separated ids, rules with place-before and
// move. It then reads everything back and fails unless the router matches
// the plan. Tags, pipelining and deadlines are the package's own (conn.go),
// not go-routeros' Async mode, which loses replies; the wire codec is too
// (wire.go: proto's starts a goroutine per read), still producing
// go-routeros proto.Sentence values.
//
// Known limits, not checked against a real router (see
// routerostest's "unconfirmed" notes): how RouterOS prints a non-CIDR IPv4
// range (Apply compares entries by value, so any form works) and the
// script syntax "!prop" for unsetting a property in set.
package routeros
