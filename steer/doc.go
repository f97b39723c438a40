// Package steer holds the policy — targets, entry points, source groups,
// ordered rules with MX-failover-safe splits, overrides and safety gates —
// and compiles it into a [Plan]: named address sets and an ordered list of
// match → DNAT rules that every backend (RouterOS, nftables, the in-process
// splitter) renders or enforces. [Plan.Route] is the reference semantics all
// backends are tested against.
package steer
