package cidr

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go4.org/netipx"
)

// labelledRange is one input of a TableAppender test.
type labelledRange struct {
	r     netipx.IPRange
	label uint16
}

// randSortedRanges returns ascending, non-overlapping ranges of both
// families near the test bases, some adjacent, some IPv4-mapped.
func randSortedRanges(rnd *rand.Rand, n int) []labelledRange {
	var out []labelledRange
	for _, v6 := range []bool{false, true} {
		var addrs []netip.Addr
		for range 2 * n {
			addrs = append(addrs, randAddrNear(rnd, v6))
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		for i := 0; i+1 < len(addrs); i += 2 {
			lo, hi := addrs[i], addrs[i+1]
			if i > 0 && rnd.IntN(4) == 0 && addrs[i-1].Next().IsValid() && addrs[i-1].Next().Compare(hi) <= 0 {
				lo = addrs[i-1].Next() // adjacent to the range before
			}
			if i > 0 && lo.Compare(addrs[i-1]) <= 0 || v6 && (lo.Unmap().Is4() || hi.Unmap().Is4()) {
				continue // equal addresses drawn, or IPv4 out of its order
			}
			if !v6 && rnd.IntN(4) == 0 {
				lo, hi = netip.AddrFrom16(lo.As16()), netip.AddrFrom16(hi.As16()) // mapped
			}
			out = append(out, labelledRange{netipx.IPRangeFrom(lo, hi), uint16(rnd.IntN(4))})
		}
	}
	return out
}

// TestTableAppender checks a TableAppender against a TableBuilder given
// the same ranges: in order, where it builds the partition itself, and
// shuffled or overlapping, where it falls back to a TableBuilder.
func TestTableAppender(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 32))
	for i := range 200 {
		rs := randSortedRanges(rnd, 1+rnd.IntN(40))
		switch i % 4 {
		case 1: // out of order from some point
			k := rnd.IntN(len(rs))
			rnd.Shuffle(len(rs)-k, func(a, b int) { rs[k+a], rs[k+b] = rs[k+b], rs[k+a] })
		case 2: // one range repeated later, with another label
			if len(rs) > 0 {
				r := rs[rnd.IntN(len(rs))]
				rs = append(rs, labelledRange{r.r, r.label + 1})
			}
		case 3: // the whole of a family
			rs = append(rs, labelledRange{netipx.IPRangeFrom(netip.MustParseAddr("::"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), 7})
		}
		var a TableAppender
		var b TableBuilder
		var pairs []pair
		for _, r := range rs {
			a.Append(r.r.From(), r.r.To(), r.label)
			b.AddRange(r.r, r.label)
			for _, p := range r.r.Prefixes() {
				pairs = append(pairs, pair{p, r.label})
			}
		}
		got, err := a.Table()
		if err != nil {
			t.Fatal(err)
		}
		want, err := b.Table()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range probes(rnd, pairs, 200) {
			gl, gok := got.Lookup(x)
			wl, wok := want.Lookup(x)
			if gl != wl || gok != wok {
				t.Fatalf("case %d (fallback %v): Lookup(%v) = %d, %v; TableBuilder %d, %v\nranges %v", i, a.b != nil, x, gl, gok, wl, wok, rs)
			}
		}
		if i%4 == 0 && a.b != nil {
			t.Fatalf("case %d: sorted input fell back to a TableBuilder", i)
		}
	}
}

func TestTableAppenderErrors(t *testing.T) {
	var a TableAppender
	a.Append(netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.0.255"), 1)
	a.Append(netip.Addr{}, netip.MustParseAddr("10.0.1.0"), 1)                      // invalid
	a.Append(netip.MustParseAddr("10.0.2.0"), netip.MustParseAddr("2001:db8::"), 1) // families
	a.Append(netip.MustParseAddr("10.0.3.9"), netip.MustParseAddr("10.0.3.0"), 1)   // reversed
	a.Append(netip.MustParseAddr("10.0.4.0"), netip.MustParseAddr("10.0.4.9"), MaxLabel+1)
	a.Append(netip.MustParseAddr("10.0.5.0"), netip.MustParseAddr("::ffff:10.0.5.255"), 2) // mixed, fine
	tab, err := a.Table()
	if tab == nil || err == nil {
		t.Fatalf("Table() = %v, %v; want a table and errors", tab, err)
	}
	for _, want := range []string{"invalid range invalid IP-10.0.1.0", "10.0.2.0-2001:db8::", "10.0.3.9-10.0.3.0", "label 65534"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
		t.Errorf("%d errors, want 4: %v", n, err)
	}
	for addr, want := range map[string]uint16{"10.0.0.7": 1, "10.0.5.7": 2, "::ffff:10.0.5.7": 2} {
		if l, ok := tab.Lookup(netip.MustParseAddr(addr)); !ok || l != want {
			t.Errorf("Lookup(%s) = %d, %v; want %d", addr, l, ok, want)
		}
	}
	for _, addr := range []string{"10.0.1.0", "10.0.4.0", "10.0.3.5", "9.255.255.255"} {
		if l, ok := tab.Lookup(netip.MustParseAddr(addr)); ok {
			t.Errorf("Lookup(%s) = %d, true; want none", addr, l)
		}
	}
	var zero TableAppender
	if tab, err := zero.Table(); err != nil || tab.Contains(netip.MustParseAddr("1.2.3.4")) {
		t.Errorf("zero TableAppender: %v, %v", tab, err)
	}
}

// FuzzTableAppender decodes the input into labelled ranges, in the order
// given, and checks a TableAppender's table against a TableBuilder's.
func FuzzTableAppender(f *testing.F) {
	f.Add([]byte{4, 10, 0, 0, 0, 10, 0, 0, 255, 1, 4, 10, 0, 1, 0, 10, 0, 1, 9, 2})
	f.Add([]byte{4, 10, 0, 1, 0, 10, 0, 1, 9, 2, 4, 10, 0, 0, 0, 10, 0, 0, 255, 1})
	f.Add([]byte{6, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a TableAppender
		var b TableBuilder
		var pairs []pair
		for len(data) > 0 && len(pairs) < 256 {
			n := 4
			if data[0]&1 == 0 {
				n = 16
			}
			if len(data) < 1+2*n+1 {
				break
			}
			lo, _ := netip.AddrFromSlice(data[1 : 1+n])
			hi, _ := netip.AddrFromSlice(data[1+n : 1+2*n])
			label := uint16(data[1+2*n]) % 8
			data = data[2+2*n:]
			if hi.Less(lo) {
				lo, hi = hi, lo
			}
			r := netipx.IPRangeFrom(lo, hi)
			a.Append(lo, hi, label)
			b.AddRange(r, label)
			for _, p := range r.Prefixes() {
				pairs = append(pairs, pair{p, label})
			}
		}
		got, err := a.Table()
		if err != nil {
			t.Fatal(err)
		}
		want, err := b.Table()
		if err != nil {
			t.Fatal(err)
		}
		rnd := rand.New(rand.NewPCG(3, uint64(len(pairs))))
		for _, x := range probes(rnd, pairs, 20) {
			gl, gok := got.Lookup(x)
			wl, wok := want.Lookup(x)
			if gl != wl || gok != wok {
				t.Fatalf("Lookup(%v) = %d, %v; TableBuilder %d, %v", x, gl, gok, wl, wok)
			}
		}
	})
}
