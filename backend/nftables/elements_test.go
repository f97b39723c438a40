package nftables

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"syscall"
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

// An interval set holds each range [lo, hi] as two elements, as nft itself
// sends them: a start element with key lo, and an end element (flag
// NFT_SET_ELEM_INTERVAL_END) with key hi+1, omitted when hi is the family's
// last address; a set whose first range does not start at zero also holds
// an end element at zero. rangeElems and zeroEnd build them the
// straightforward way, for comparison with the batch encoder.
func rangeElems(dst []nftables.SetElement, r netipx.IPRange) []nftables.SetElement {
	dst = append(dst, nftables.SetElement{Key: addrBytes(r.From())})
	if end := r.To().Next(); end.IsValid() {
		dst = append(dst, nftables.SetElement{Key: addrBytes(end), IntervalEnd: true})
	}
	return dst
}

func zeroEnd(v6 bool) nftables.SetElement {
	return nftables.SetElement{Key: make([]byte, keyLen(v6)), IntervalEnd: true}
}

// encodeElems encodes rs with the batch encoder and parses the elements
// back out of the bytes.
func encodeElems(t testing.TB, rs []netipx.IPRange, v6, zero bool) []nftables.SetElement {
	b := newBatch(0)
	b.putElems("t", "s", 0, v6, rs, zero, true)
	var out []nftables.SetElement
	for _, m := range parseBatch(t, b) {
		_, es := parseElemMsg(t, m.Data)
		out = append(out, es...)
	}
	return out
}

// parseBatch parses the messages between begin and end (end not yet added).
func parseBatch(t testing.TB, b *batch) []syscall.NetlinkMessage {
	t.Helper()
	ms, err := syscall.ParseNetlinkMessage(b.buf[beginLen:])
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != b.msgs() {
		t.Fatalf("%d messages parsed, batch counted %d", len(ms), b.msgs())
	}
	return ms
}

// parseElemMsg reads the set name and elements of a NEWSETELEM or
// DELSETELEM message's data.
func parseElemMsg(t testing.TB, data []byte) (set string, es []nftables.SetElement) {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_LIST_SET:
			set = ad.String()
		case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
			ad.Nested(func(ad *netlink.AttributeDecoder) error {
				for ad.Next() {
					var e nftables.SetElement
					ad.Nested(func(ad *netlink.AttributeDecoder) error {
						for ad.Next() {
							switch ad.Type() {
							case unix.NFTA_SET_ELEM_FLAGS:
								e.IntervalEnd = binary.BigEndian.Uint32(ad.Bytes()) == unix.NFT_SET_ELEM_INTERVAL_END
							case unix.NFTA_SET_ELEM_KEY:
								ad.Nested(func(ad *netlink.AttributeDecoder) error {
									for ad.Next() {
										e.Key = ad.Bytes()
									}
									return nil
								})
							}
						}
						return nil
					})
					es = append(es, e)
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
	return set, es
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
		first := needsZeroEnd(c.rs)
		es := encodeElems(t, c.rs, c.v6, first)
		rand.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] }) // the kernel's order is its own
		got, zero, err := decodeElems(es, c.v6)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(got, c.rs) || zero != first {
			t.Errorf("%s: got %d ranges zero=%v, want %d zero=%v", c.name, len(got), zero, len(c.rs), first)
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
		enc := encodeElems(t, rs, v6, zero)
		again, zero2, err := decodeElems(enc, v6)
		if err != nil || !slices.Equal(again, rs) || zero2 != zero {
			t.Fatalf("re-encoding %v: %v %v %v", rs, again, zero2, err)
		}
		if len(enc) != len(es) {
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

// TestElemMessagesMatchLibrary: every element message the batch encoder
// writes is byte for byte what google/nftables marshals for the same
// elements, and the lists are split under the attribute limit without
// separating a range's two elements.
func TestElemMessagesMatchLibrary(t *testing.T) {
	for _, c := range []struct {
		name string
		rs   []netipx.IPRange
		v6   bool
		zero bool
	}{
		{"v4", randomSet(t, 3, 20000, false).Ranges(), false, true},
		{"v6", randomSet(t, 4, 8000, true).Ranges(), true, false},
		{"v6-zero", randomSet(t, 5, 100, true).Ranges(), true, true},
		{"to-max", []netipx.IPRange{netipx.MustParseIPRange("1.0.0.0-255.255.255.255")}, false, false},
		{"zero-only", nil, false, true},
	} {
		for _, add := range []bool{true, false} {
			b := newBatch(0)
			b.putElems(DefaultTable, "english_v4", 7, c.v6, c.rs, c.zero, add)
			ms := parseBatch(t, b)
			var all []nftables.SetElement
			for i, m := range ms {
				if len(m.Data) > 0xffff {
					t.Errorf("%s: message %d of %d bytes", c.name, i, len(m.Data))
				}
				_, es := parseElemMsg(t, m.Data)
				if i+1 < len(ms) && es[len(es)-1].IntervalEnd == false {
					t.Errorf("%s: message %d ends with a range's start", c.name, i)
				}
				all = append(all, es...)

				var lib []netlink.Message
				cc := recorder(t, &lib)
				s := &nftables.Set{Table: &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet}, Name: "english_v4", ID: 7}
				if add {
					cc.SetAddElements(s, es)
				} else {
					cc.SetDeleteElements(s, es)
				}
				if err := cc.Flush(); err != nil {
					t.Fatal(err)
				}
				want := lib[1]
				if uint16(want.Header.Type) != m.Header.Type || uint16(want.Header.Flags) != m.Header.Flags || !bytes.Equal(want.Data, m.Data) {
					t.Fatalf("%s add=%v: message %d differs from google/nftables' (type %x/%x flags %x/%x, %d/%d bytes)",
						c.name, add, i, m.Header.Type, want.Header.Type, m.Header.Flags, want.Header.Flags, len(m.Data), len(want.Data))
				}
			}
			var ref []nftables.SetElement
			if c.zero {
				ref = append(ref, zeroEnd(c.v6))
			}
			for _, r := range c.rs {
				ref = rangeElems(ref, r)
			}
			if !slices.EqualFunc(all, ref, func(a, b nftables.SetElement) bool {
				return bytes.Equal(a.Key, b.Key) && a.IntervalEnd == b.IntervalEnd
			}) {
				t.Errorf("%s: %d elements encoded, want %d", c.name, len(all), len(ref))
			}
			if len(c.rs) > 10000 && len(ms) < 5 {
				t.Errorf("%s: %d messages: the list was not split", c.name, len(ms))
			}
		}
	}
}

// recorder is a Conn that records each batch instead of sending it.
func recorder(t testing.TB, batches *[]netlink.Message) *nftables.Conn {
	cc, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		// Flush's reads of the acks come here too, without messages.
		if len(req) > 0 {
			*batches = append(*batches, req...)
		}
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// TestBatch checks a full and an incremental transaction as encoded: the
// message sequence, the elements each set receives, and the state the
// transaction says the kernel will hold.
func TestBatch(t *testing.T) {
	e1 := randomSet(t, 7, 20000, false).Union(randomSet(t, 8, 8000, true))
	var b cidr.Builder
	b.AddSet(e1)
	b.AddSet(randomSet(t, 9, 200, false))
	b.RemoveSet(randomSet(t, 10, 200, true))
	e2, _ := b.Set()
	p1, p2 := testPlan(t, e1), testPlan(t, e2)

	l1, l2 := layoutOf(p1), layoutOf(p2)
	full := newTxn(DefaultTable, l1, nil)
	if err := full.build(l1, &state{}); err != nil {
		t.Fatal(err)
	}
	inc := newTxn(DefaultTable, l2, nil)
	if err := inc.build(l2, full.after); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tx   *txn
		l    *layout
		base *state
	}{
		{"full", full, l1, &state{sets: map[string]*setState{}}},
		{"incremental", inc, l2, full.after},
	} {
		tx := c.tx
		if err := verify(c.l, tx.after); err != nil {
			t.Errorf("%s: the state after: %v", c.name, err)
		}
		// Replay the element messages on the base state.
		sets := map[string][]nftables.SetElement{}
		for name, s := range c.base.sets {
			if s.zero {
				sets[name] = append(sets[name], zeroEnd(s.v6))
			}
			for _, r := range s.ranges {
				sets[name] = rangeElems(sets[name], r)
			}
		}
		types := map[uint16]int{}
		for i, m := range parseBatch(t, tx.b) {
			if m.Header.Seq != uint32(i+1) || m.Header.Flags&unix.NLM_F_ACK == 0 {
				t.Errorf("%s: message %d: seq %d flags %x", c.name, i, m.Header.Seq, m.Header.Flags)
			}
			typ := m.Header.Type & 0xff
			types[typ]++
			switch typ {
			case unix.NFT_MSG_NEWSETELEM:
				set, es := parseElemMsg(t, m.Data)
				sets[set] = append(sets[set], es...)
			case unix.NFT_MSG_DELSETELEM:
				set, es := parseElemMsg(t, m.Data)
				for _, e := range es {
					i := slices.IndexFunc(sets[set], func(x nftables.SetElement) bool { return bytes.Equal(x.Key, e.Key) && x.IntervalEnd == e.IntervalEnd })
					if i < 0 {
						t.Fatalf("%s: deleting %v from %s: not there", c.name, e, set)
					}
					sets[set] = slices.Delete(sets[set], i, i+1)
				}
			}
		}
		for _, ks := range c.l.sets {
			rs, zero, err := decodeElems(sets[ks.name], ks.v6)
			if err != nil || !slices.Equal(rs, ks.ranges) || zero != tx.after.sets[ks.name].zero {
				t.Errorf("%s: set %s after replay: %d ranges (zero %v, %v), want %d", c.name, ks.name, len(rs), zero, err, len(ks.ranges))
			}
		}
		if tx.b.acks != tx.b.msgs() {
			t.Errorf("%s: %d acks expected for %d messages", c.name, tx.b.acks, tx.b.msgs())
		}
		t.Logf("%s: %d messages %v, %d bytes; +%d -%d", c.name, tx.b.msgs()+2, types, tx.b.size(), tx.added, tx.removed)
	}
	if inc.full || inc.added == 0 || inc.removed == 0 {
		t.Errorf("incremental: full=%v +%d -%d", inc.full, inc.added, inc.removed)
	}
}

// BenchmarkBuildFull is the Go side of a full apply of a plan the size of
// the seed's (about 60,000 IPv4 and 46,000 IPv6 ranges): the layout and the
// encoded transaction, nothing sent.
func BenchmarkBuildFull(b *testing.B) {
	p := testPlan(b, randomSet(b, 11, 60000, false).Union(randomSet(b, 12, 46000, true)))
	b.ReportAllocs()
	var size int
	for b.Loop() {
		l := layoutOf(p)
		tx := newTxn(DefaultTable, l, nil)
		if err := tx.build(l, &state{}); err != nil {
			b.Fatal(err)
		}
		size = tx.b.size()
	}
	b.ReportMetric(float64(size), "batch-B")
	b.ReportMetric(float64(layoutOf(p).numRanges()), "ranges")
}
