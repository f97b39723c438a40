package benchmarks

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"testing"

	"github.com/geosteer/geosteer/benchmarks/dataset"
	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// Aggregation: from a list of prefixes to the minimal CIDR list.

func aggGeosteer(ps []netip.Prefix) []netip.Prefix {
	var b cidr.Builder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	s, _ := b.Set()
	return s.Prefixes()
}

func aggNetipx(ps []netip.Prefix) []netip.Prefix {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	s, _ := b.IPSet()
	return s.Prefixes()
}

// aggSortMerge is the plain floor: ranges as integers, a comparison sort,
// one merge pass, and the range-to-prefix split.
func aggSortMerge(ps []netip.Prefix) []netip.Prefix {
	type r4 struct{ lo, hi uint64 } // uint64 so that hi+1 cannot wrap
	type r6 struct{ lo, hi [2]uint64 }
	var v4 []r4
	var v6 []r6
	for _, p := range ps {
		if p.Addr().Is4() {
			a := p.Addr().As4()
			lo := uint64(binary.BigEndian.Uint32(a[:]))
			v4 = append(v4, r4{lo, lo | (1<<(32-p.Bits()) - 1)})
		} else {
			a := p.Addr().As16()
			lo := [2]uint64{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
			hi := lo
			n := 128 - p.Bits()
			if n >= 64 {
				hi[1] = ^uint64(0)
				hi[0] |= 1<<(n-64) - 1
			} else {
				hi[1] |= 1<<n - 1
			}
			v6 = append(v6, r6{lo, hi})
		}
	}
	slices.SortFunc(v4, func(a, b r4) int { return cmp.Compare(a.lo, b.lo) })
	slices.SortFunc(v6, func(a, b r6) int {
		if c := cmp.Compare(a.lo[0], b.lo[0]); c != 0 {
			return c
		}
		return cmp.Compare(a.lo[1], b.lo[1])
	})
	var out []netip.Prefix
	m4 := v4[:0]
	for _, r := range v4 {
		if n := len(m4); n > 0 && r.lo <= m4[n-1].hi+1 {
			m4[n-1].hi = max(m4[n-1].hi, r.hi)
			continue
		}
		m4 = append(m4, r)
	}
	for _, r := range m4 {
		for lo := r.lo; lo <= r.hi; {
			k := bits.TrailingZeros32(uint32(lo))
			if lo == 0 {
				k = 32
			}
			for lo+(1<<k)-1 > r.hi {
				k--
			}
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], uint32(lo))
			out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), 32-k))
			lo += 1 << k
		}
	}
	less := func(a, b [2]uint64) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }
	m6 := v6[:0]
	for _, r := range v6 {
		if n := len(m6); n > 0 {
			next := m6[n-1].hi
			next[1]++
			if next[1] == 0 {
				next[0]++
			}
			if !less(next, r.lo) && next != [2]uint64{} {
				if less(m6[n-1].hi, r.hi) {
					m6[n-1].hi = r.hi
				}
				continue
			}
		}
		m6 = append(m6, r)
	}
	for _, r := range m6 {
		var lo, hi [16]byte
		binary.BigEndian.PutUint64(lo[:8], r.lo[0])
		binary.BigEndian.PutUint64(lo[8:], r.lo[1])
		binary.BigEndian.PutUint64(hi[:8], r.hi[0])
		binary.BigEndian.PutUint64(hi[8:], r.hi[1])
		out = netipx.IPRangeFrom(netip.AddrFrom16(lo), netip.AddrFrom16(hi)).AppendPrefixes(out)
	}
	return out
}

var aggregators = []struct {
	name string
	fn   func([]netip.Prefix) []netip.Prefix
}{
	{"geosteer", aggGeosteer},
	{"netipx", aggNetipx},
	{"sortmerge", aggSortMerge},
}

// TestAggregationAgrees checks that every aggregator gives the identical
// minimal list on every input, so the benchmark compares equal work.
func TestAggregationAgrees(t *testing.T) {
	inputs := dataset.Inputs(t)
	for _, name := range []string{"A", "B", "C", "D"} {
		in := inputs[name]
		want := aggNetipx(slices.Clone(in))
		for _, a := range aggregators {
			got := a.fn(slices.Clone(in))
			if !slices.Equal(got, want) {
				t.Errorf("%s on %s: %d prefixes, netipx gives %d", a.name, name, len(got), len(want))
			}
		}
		var b cidr.Builder
		for _, p := range in {
			b.AddPrefix(p)
		}
		s, _ := b.Set()
		t.Logf("input %s: %d prefixes in → %d prefixes, %d ranges out", name, len(in), s.NumPrefixes(), s.NumRanges())
	}
}

func BenchmarkAggregate(b *testing.B) {
	inputs := dataset.Inputs(b)
	for _, name := range []string{"A", "B", "C", "D"} {
		in := inputs[name]
		for _, a := range aggregators {
			b.Run(name+"/"+a.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					a.fn(in)
				}
			})
		}
	}
}
