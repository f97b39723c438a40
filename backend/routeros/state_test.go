package routeros

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"go4.org/netipx"
)

// TestMerge checks merge against a map-based reference on sorted
// generations with duplicates, across the puller's chunk boundaries.
func TestMerge(t *testing.T) {
	r4 := func(a uint32) netipx.IPRange {
		x := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		return netipx.IPRangeFrom(x, x)
	}
	for _, tt := range []struct {
		name         string
		nHave, nWant int
		dupEvery     int
	}{
		{"empty both", 0, 0, 0},
		{"empty have", 0, 700, 0},
		{"empty want", 700, 0, 0},
		{"one chunk", 200, 210, 0},
		{"chunk edge", pullChunk, pullChunk, 0},
		{"many chunks, duplicates", 3000, 2900, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(tt.nHave), uint64(tt.nWant)))
			pick := func(n int) []uint32 {
				m := map[uint32]bool{}
				for len(m) < n {
					m[rnd.Uint32N(uint32(2*max(tt.nHave, tt.nWant)+10))] = true
				}
				out := slices.Sorted(func(yield func(uint32) bool) {
					for a := range m {
						if !yield(a) {
							return
						}
					}
				})
				return out
			}
			var have []entry
			id := uint64(1)
			for i, a := range pick(tt.nHave) {
				have = append(have, entry{r4(a), id})
				id++
				if tt.dupEvery > 0 && i%tt.dupEvery == 0 {
					have = append(have, entry{r4(a), id})
					id++
				}
			}
			var want []netipx.IPRange
			for _, a := range pick(tt.nWant) {
				want = append(want, r4(a))
			}

			kept := map[int]uint64{}
			added := map[int]bool{}
			removed := map[uint64]bool{}
			g := &glist{entries: have}
			hr, hid := g.ranges()
			merge(hr, hid, slices.Values(want),
				func(j int, id uint64) { kept[j] = id },
				func(j int, r netipx.IPRange) {
					if want[j] != r {
						t.Fatalf("add(%d, %v): want[%d] is %v", j, r, j, want[j])
					}
					added[j] = true
				},
				func(id uint64) { removed[id] = true })

			first := map[netipx.IPRange]uint64{} // the id a keep must choose
			for _, e := range have {
				if _, ok := first[e.r]; !ok {
					first[e.r] = e.id
				}
			}
			for j, w := range want {
				id, ok := first[w]
				switch {
				case ok && kept[j] != id:
					t.Errorf("want[%d] %v: kept %d, want id %d", j, w, kept[j], id)
				case !ok && !added[j]:
					t.Errorf("want[%d] %v: not added", j, w)
				case ok && added[j]:
					t.Errorf("want[%d] %v: present and added", j, w)
				}
			}
			keptIDs := map[uint64]bool{}
			for _, id := range kept {
				keptIDs[id] = true
			}
			for _, e := range have {
				if keptIDs[e.id] == removed[e.id] {
					t.Errorf("have %v id %d: kept %v, removed %v", e.r, e.id, keptIDs[e.id], removed[e.id])
				}
			}
		})
	}
}
