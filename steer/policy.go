package steer

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/geosteer/geosteer/cidr"
)

// A Policy is the declarative form of a steering setup: where mail may
// arrive (entry points), where it may be sent (targets), named groups of
// sources, and ordered rules from sources to targets, with the operators'
// overrides and the safety gates that keep a bad data update from taking
// effect. [Load] reads one from a policy file; [Compile] turns it into a
// [Plan].
//
// A Policy is plain data; the zero Policy is empty (and does not compile:
// it has no rules). Names (of targets, entry points, groups and rules) are
// [a-z0-9_-]+ and unique within their kind; plan set and rule names are
// derived from them, so renaming one renames what backends install.
type Policy struct {
	Targets     []Target
	EntryPoints []EntryPoint
	Groups      []Group
	Rules       []PolicyRule
	Overrides   []Override
	Safety      Safety

	// File is the policy file's name, for error messages; "" for a
	// policy built in code.
	File string
	// lines maps a field path ("rules[1].split") to its line in File.
	lines map[string]int
}

// A Target is a mail server connections are sent to. At least one of IPv4
// and IPv6 is set; IPv6 entry points need targets with an IPv6 address.
type Target struct {
	Name string
	IPv4 netip.AddrPort
	IPv6 netip.AddrPort
	// Strict marks the strict server (the seed's tarpit for foreign
	// senders). The fail mode uses it to tell "normal" from "strict".
	Strict  bool
	Comment string
}

// Addr returns the target's address and port for the family (4 or 6).
func (t *Target) Addr(family int) netip.AddrPort {
	if family == 4 {
		return t.IPv4
	}
	return t.IPv6
}

// An EntryPoint is a public address the router receives mail on (an MX).
type EntryPoint struct {
	Name string
	IPv4 netip.Addr
	IPv6 netip.Addr
	// Ports are the TCP ports steered; nil means 25.
	Ports   []uint16
	Comment string
}

// Addr returns the entry point's address of the family (4 or 6).
func (e *EntryPoint) Addr(family int) netip.Addr {
	if family == 4 {
		return e.IPv4
	}
	return e.IPv6
}

func (e *EntryPoint) ports() []uint16 {
	if len(e.Ports) == 0 {
		return []uint16{25}
	}
	return e.Ports
}

// A Group is a named set of sources: the union of countries and continents
// (from the country data), literal addresses, prefixes and ranges, and
// address-list files, after the overrides that name it.
type Group struct {
	Name       string
	Countries  []string // ISO 3166-1 alpha-2 codes, upper case
	Continents []string // AF AN AS EU NA OC SA
	// Addrs are the literal prefixes, ranges and addresses, and the
	// contents of the files named in Lists (read by Load).
	Addrs cidr.Set
	Lists []string
	// Unknown adds the addresses the country data has no country for
	// (see [CountryData.Unknown]): with it, "not english" no longer
	// catches unallocated or unmapped space.
	Unknown bool
	// MinEntries is the safety gate for a geo-derived group: fewer
	// entries (ranges, both families) than this fails the compilation.
	// 0 means Safety.MinEntries.
	MinEntries int
	Comment    string
}

// geo reports whether the group's addresses come (partly) from country data.
func (g *Group) geo() bool { return len(g.Countries)+len(g.Continents) > 0 || g.Unknown }

// A PolicyRule sends connections from a group (or everyone) arriving on
// some entry points and ports to a target, or splits them across a pool of
// targets. Rules are tried in order; the first that matches wins.
type PolicyRule struct {
	Name string
	// From names the source group; "" matches every source. With Not,
	// the rule matches sources outside the group ("not english").
	From string
	Not  bool
	// EntryPoints restricts the rule to these entry points; nil means
	// all. Ports restricts it to these ports (of those the entry points
	// have); nil means all.
	EntryPoints []string
	Ports       []uint16
	// To is the target, or with more than one name the split pool.
	To []string
	// Weights, if set, has one positive weight per pool target: part j
	// of the split covers the share Weights[j]/sum of the address space
	// (see [Compile] for how parts are laid out and rotated).
	Weights []int
	// Split is how the pool is split: SplitRange (the default) or
	// SplitHash.
	Split SplitMethod
	// Seed is the hash seed of a SplitHash split.
	Seed uint32
	// NoRotate turns off the MX rotation: every entry point then sends
	// part j to To[j], and validation rejects the rule when there are
	// several entry points, because a sender's retry would reach the same
	// server on every MX.
	NoRotate bool
	Comment  string
}

// A SplitMethod says how a rule's pool is split.
type SplitMethod int

const (
	// SplitRange gives each part one contiguous range of the source
	// address space: reproducible by every backend.
	SplitRange SplitMethod = iota
	// SplitHash gives each part a range of the values of the Linux
	// kernel's jhash of the source address with a pinned seed, as
	// nftables' "jhash ip saddr mod N seed S" computes it. Only backends
	// whose [Capabilities] say they can compute it accept it.
	SplitHash
)

func (m SplitMethod) String() string {
	switch m {
	case SplitRange:
		return "range"
	case SplitHash:
		return "hash"
	}
	return fmt.Sprintf("SplitMethod(%d)", int(m))
}

// An Override forces addresses into a group (Add) or out of it (Remove),
// over what the country data says: the technicians' corrections, such as
// the seed's Canadian Government blocks missing from the database. Each
// has a reason. An override past its Expires time is a compilation error:
// silently dropping it would change routing unannounced, and silently
// keeping it would defeat the expiry; the operator renews or deletes it.
type Override struct {
	Group   string
	Add     cidr.Set
	Remove  cidr.Set
	Reason  string
	Expires time.Time // zero: never
}

// Safety holds the gates that stop a compilation from producing a plan
// that is probably wrong.
type Safety struct {
	// MinEntries is the least number of entries (ranges, both families)
	// a geo-derived group may have; 0 means 1, so an empty group always
	// fails. A group's own MinEntries takes precedence.
	MinEntries int
	// MaxShrink is the largest fraction (0 to 1) of a set's addresses,
	// per family, that may disappear against the previous plan
	// ([Options.Previous]); 0 means no limit.
	MaxShrink float64
	// OnMissingData says what to do when no country data is given to
	// Compile (nil CountryData).
	OnMissingData FailMode
}

// A FailMode says where connections go when the country data is missing.
type FailMode int

const (
	// FailError refuses to compile without country data.
	FailError FailMode = iota
	// FailNormal sends everyone to the normal servers: each rule whose
	// source group is geo-derived is dropped if its targets are strict,
	// and made to match every source otherwise.
	FailNormal
	// FailStrict sends everyone to the strict server: each geo-derived
	// rule is made to match every source if its targets are strict, and
	// dropped otherwise.
	FailStrict
)

func (m FailMode) String() string {
	switch m {
	case FailError:
		return "error"
	case FailNormal:
		return "normal"
	case FailStrict:
		return "strict"
	}
	return fmt.Sprintf("FailMode(%d)", int(m))
}
