package nftables

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/geosteer/geosteer/cidr"
	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// randomSet is a set of n random disjoint ranges of one family.
func randomSet(t testing.TB, seed uint64, n int, v6 bool) cidr.Set {
	rnd := rand.New(rand.NewPCG(seed, 1))
	var b cidr.Builder
	for range n {
		var a netip.Addr
		if v6 {
			var x [16]byte
			x[0], x[1], x[2] = 0x20, 0x01, byte(rnd.IntN(256))
			x[3], x[4], x[5] = byte(rnd.IntN(256)), byte(rnd.IntN(256)), byte(rnd.IntN(256))
			a = netip.AddrFrom16(x)
			b.AddPrefix(netip.PrefixFrom(a, 32+rnd.IntN(17)).Masked())
		} else {
			a = netip.AddrFrom4([4]byte{byte(rnd.IntN(224)), byte(rnd.IntN(256)), byte(rnd.IntN(256)), 0})
			b.AddRange(netipx.IPRangeFrom(a, a.Next().Next().Next()))
			b.AddPrefix(netip.PrefixFrom(a, 20+rnd.IntN(5)).Masked())
		}
	}
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func flatten(chunks [][]nftables.SetElement) []nftables.SetElement {
	var out []nftables.SetElement
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

func TestDecodeElemsRoundTrip(t *testing.T) {
	max4 := netip.MustParseAddr("255.255.255.255")
	max6 := netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	cases := []struct {
		name string
		rs   []netipx.IPRange
		v6   bool
	}{
		{"empty", nil, false},
		{"random4", randomSet(t, 1, 3000, false).Ranges(), false},
		{"random6", randomSet(t, 2, 3000, true).Ranges(), true},
		{"zero-start", []netipx.IPRange{netipx.MustParseIPRange("0.0.0.0-0.0.0.9"), netipx.MustParseIPRange("10.0.0.0-10.0.0.1")}, false},
		{"to-max4", []netipx.IPRange{netipx.IPRangeFrom(netip.MustParseAddr("1.2.3.4"), max4)}, false},
		{"to-max6", []netipx.IPRange{netipx.IPRangeFrom(netip.MustParseAddr("::1"), max6)}, true},
		{"all4", []netipx.IPRange{netipx.IPRangeFrom(netip.IPv4Unspecified(), max4)}, false},
		{"single", []netipx.IPRange{netipx.MustParseIPRange("192.0.2.1-192.0.2.1")}, false},
	}
	for _, c := range cases {
		var first *nftables.SetElement
		if needsZeroEnd(c.rs) {
			z := zeroEnd(c.v6)
			first = &z
		}
		es := flatten(chunkElems(c.rs, first))
		rand.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] }) // the kernel's order is its own
		got, zero, err := decodeElems(es, c.v6)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(got, c.rs) || zero != (first != nil) {
			t.Errorf("%s: got %d ranges zero=%v, want %d zero=%v", c.name, len(got), zero, len(c.rs), first != nil)
		}
	}
}

func TestDecodeElemsErrors(t *testing.T) {
	k := func(s string) []byte { return addrBytes(netip.MustParseAddr(s)) }
	start := func(s string) nftables.SetElement { return nftables.SetElement{Key: k(s)} }
	end := func(s string) nftables.SetElement { return nftables.SetElement{Key: k(s), IntervalEnd: true} }
	bad := map[string][]nftables.SetElement{
		"two starts":      {start("10.0.0.0"), start("10.0.0.5"), end("10.0.1.0")},
		"end first":       {end("10.0.0.0"), start("10.0.1.0")},
		"two ends":        {start("10.0.0.0"), end("10.0.0.5"), end("10.0.1.0")},
		"duplicate":       {start("10.0.0.0"), start("10.0.0.0")},
		"short key":       {{Key: []byte{10, 0, 0}}},
		"v6 key in v4":    {start("2001:db8::")},
		"zero end as end": {start("0.0.0.0"), end("0.0.0.0")},
	}
	for name, es := range bad {
		if _, _, err := decodeElems(es, false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzDecodeElems: any element list decodes to an error or to ranges that
// encode back to the same elements.
func FuzzDecodeElems(f *testing.F) {
	f.Add([]byte{0, 10, 0, 0, 0, 1, 11, 0, 0, 0}, false)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 10, 0, 0, 0}, false)
	f.Add([]byte{0, 255, 255, 255, 0}, false)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		n := keyLen(v6) + 1
		var es []nftables.SetElement
		for len(data) >= n {
			es = append(es, nftables.SetElement{IntervalEnd: data[0]&1 == 1, Key: data[1:n]})
			data = data[n:]
		}
		rs, zero, err := decodeElems(es, v6)
		if err != nil {
			return
		}
		var first *nftables.SetElement
		if zero {
			z := zeroEnd(v6)
			first = &z
		}
		again, zero2, err := decodeElems(flatten(chunkElems(rs, first)), v6)
		if err != nil || !slices.Equal(again, rs) || zero2 != zero {
			t.Fatalf("re-encoding %v: %v %v %v", rs, again, zero2, err)
		}
		if len(flatten(chunkElems(rs, first))) != len(es) {
			t.Fatalf("%d elements decode to %d ranges that encode to a different count", len(es), len(rs))
		}
	})
}

func TestDiffRanges(t *testing.T) {
	r := netipx.MustParseIPRange
	old := []netipx.IPRange{r("10.0.0.0-10.0.0.255"), r("10.0.2.0-10.0.2.255"), r("10.0.4.0-10.0.4.255"), r("10.0.9.0-10.0.9.9")}
	new := []netipx.IPRange{r("10.0.0.0-10.0.0.255"), r("10.0.2.0-10.0.3.0"), r("10.0.4.0-10.0.4.127"), r("10.0.7.0-10.0.7.7")}
	del, add := diffRanges(old, new)
	wantDel := []netipx.IPRange{old[1], old[2], old[3]}
	wantAdd := []netipx.IPRange{new[1], new[2], new[3]}
	if !slices.Equal(del, wantDel) || !slices.Equal(add, wantAdd) {
		t.Errorf("diff = -%v +%v, want -%v +%v", del, add, wantDel, wantAdd)
	}
	// Property: old - del + add = new, over random sets.
	for seed := range uint64(20) {
		a, b := randomSet(t, seed, 500, seed%2 == 1), randomSet(t, seed+100, 500, seed%2 == 1)
		mid := a.Union(b.Intersect(randomSet(t, seed+200, 300, seed%2 == 1)))
		del, add := diffRanges(a.Ranges(), mid.Ranges())
		var bb cidr.Builder
		bb.AddSet(a)
		for _, r := range del {
			bb.RemoveRange(r)
		}
		for _, r := range add {
			bb.AddRange(r)
		}
		if got, _ := bb.Set(); !got.Equal(mid) {
			t.Fatalf("seed %d: old - del + add != new", seed)
		}
	}
}

// recorder is a Conn that records each batch instead of sending it.
func recorder(t testing.TB, batches *[][]netlink.Message) *nftables.Conn {
	cc, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		// Flush's reads of the acks come here too, without messages.
		if len(req) > 0 {
			*batches = append(*batches, req)
		}
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// TestTxnSize checks the transaction's message splitting and byte count
// against the messages google/nftables actually marshals.
func TestTxnSize(t *testing.T) {
	e1 := randomSet(t, 7, 20000, false).Union(randomSet(t, 8, 8000, true))
	var b cidr.Builder
	b.AddSet(e1)
	b.AddSet(randomSet(t, 9, 200, false))
	b.RemoveSet(randomSet(t, 10, 200, true))
	e2, _ := b.Set()
	p1, p2 := testPlan(t, e1), testPlan(t, e2)

	// Full build, then an incremental one against the state p1 leaves.
	l1, l2 := layoutOf(p1), layoutOf(p2)
	st := &state{exists: true, sets: map[string]*setState{}, chain: &nftables.Chain{Name: chainName}}
	for _, ks := range l1.sets {
		st.sets[ks.name] = &setState{set: &nftables.Set{Name: ks.name, Table: &nftables.Table{Name: DefaultTable}}, v6: ks.v6, ranges: ks.ranges, zero: needsZeroEnd(ks.ranges)}
	}
	for _, kr := range l1.rules {
		k, _ := ruleKey(ruleExprs(kr), ruleUserData(kr))
		st.rules = append(st.rules, k)
	}
	for _, c := range []struct {
		name  string
		l     *layout
		st    *state
		exact bool
	}{
		{"full", l1, &state{}, false},
		{"incremental", l2, st, true},
	} {
		var batches [][]netlink.Message
		cc := recorder(t, &batches)
		tx := &txn{cc: cc, table: &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet}}
		if err := tx.build(c.l, c.st); err != nil {
			t.Fatal(err)
		}
		if err := cc.Flush(); err != nil {
			t.Fatal(err)
		}
		if len(batches) != 1 {
			t.Fatalf("%s: %d batches, want 1", c.name, len(batches))
		}
		size, elemMsgs := 0, 0
		for _, m := range batches[0] {
			bin, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			size += len(bin)
			typ := uint16(m.Header.Type) & 0xff
			if typ == unix.NFT_MSG_NEWSETELEM || typ == unix.NFT_MSG_DELSETELEM {
				elemMsgs++
				if len(bin) > 0xffff {
					t.Errorf("%s: element message of %d bytes", c.name, len(bin))
				}
			}
		}
		if len(batches[0]) != tx.msgs+2 {
			t.Errorf("%s: %d messages, counted %d", c.name, len(batches[0]), tx.msgs+2)
		}
		if c.exact && size != tx.bytes() || !c.exact && (size > tx.bytes()+64*tx.msgs || size < tx.bytes()-64*tx.msgs) {
			t.Errorf("%s: batch of %d bytes, counted %d", c.name, size, tx.bytes())
		}
		t.Logf("%s: %d messages (%d of elements), %d bytes, counted %d; +%d -%d", c.name, len(batches[0]), elemMsgs, size, tx.bytes(), tx.added, tx.removed)
		if c.name == "full" && elemMsgs < 10 {
			t.Errorf("full: %d element messages: the lists were not split", elemMsgs)
		}
	}
}
