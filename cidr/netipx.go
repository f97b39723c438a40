package cidr

import "go4.org/netipx"

// FromIPSet returns the Set holding the addresses of s.
func FromIPSet(s *netipx.IPSet) Set {
	var b Builder
	b.AddIPSet(s)
	set, _ := b.Set() // an IPSet's ranges are always valid
	return set
}

// IPSet returns s as a netipx.IPSet.
func (s Set) IPSet() *netipx.IPSet {
	var b netipx.IPSetBuilder
	for r := range s.AllRanges() {
		b.AddRange(r)
	}
	set, _ := b.IPSet() // our ranges are always valid
	return set
}
