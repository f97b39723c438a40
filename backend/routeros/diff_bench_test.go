package routeros

import (
	"net/netip"
	"testing"

	"github.com/geosteer/geosteer/cidr"
)

// BenchmarkDiffOf: the client's walk of a remembered 100,000-entry list
// against a plan with 1% of the entries moved.
func BenchmarkDiffOf(b *testing.B) {
	set := func(shift uint32) cidr.Set {
		var bl cidr.Builder
		for i := range uint32(100_000) {
			a := 11<<24 + i*4
			if i%100 == 0 {
				a += shift
			}
			bl.Add(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}))
		}
		s, _ := bl.Set()
		return s
	}
	old, nw := set(0), set(1)
	ids := make([]uint64, old.NumRanges())
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	g := &glist{key: listKey{"x", 4}, known: &mlist{set: old, ids: ids}}
	d := &dlist{key: listKey{"x", 4}, set: nw, n: nw.NumRanges()}
	for b.Loop() {
		if c := diffOf(g, d).cost; c != 2000 {
			b.Fatal(c)
		}
	}
}
