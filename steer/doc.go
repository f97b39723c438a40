// Package steer compiles a steering policy into a plan that every
// enforcement point can express.
//
// A [Policy] says where mail arrives (entry points: the MX addresses and
// ports), where it may go (targets), who the senders are (groups of
// countries, continents, address lists and prefixes, corrected by
// overrides with reasons and expiry dates), and, in ordered rules, which
// senders go where: the seed's two rules are "not english → foreign" and
// "everyone → split(A, B)". Policies are written in YAML ([Load]; see
// testdata/seed.yaml for the format, field by field) and validated with
// every error naming file, line and field.
//
// [Compile] turns a policy and country data into a [Plan] ([CompileFile]
// does the whole job from a policy file and a database path): named address
// sets and an ordered list of DNAT rules in a form RouterOS, nftables and
// the in-process splitter all render. The split is by contiguous source
// address ranges, deterministic and identical everywhere, rotated per
// entry point so that a sender retrying on its second MX reaches another
// server; Compile proves that no source reaches one server on every MX.
// Hash splits compile only for backends that can compute the same hash
// ([Capabilities]). Safety gates (a minimum size for geo-derived groups,
// a maximum shrink against the previous plan) and an explicit fail mode
// for missing data keep a bad data update from taking effect.
//
// A plan answers questions before anything is installed: [Plan.Route] is
// the reference semantics, [Plan.Router] the allocation-free fast form
// for in-process use ([Router.Entry] resolves an entry point once, for a
// listener, and its [Entry.Rule] costs about one cidr table lookup),
// [Plan.Explain] says why a source goes where it
// goes (rule, set, country, database network, override), and [Diff] says
// what changes from the plan in force ("1 set, +1,204 −88 entries, rules
// unchanged").
//
// Country data is consumed through the small [CountryData] interface
// (and [Explainer] for provenance), which geo.DB satisfies; steer does
// not need to know where the data came from.
package steer
