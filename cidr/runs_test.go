package cidr_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

func ExampleAppender() {
	// Ranges as a sorted source yields them: merged as they come.
	var a cidr.Appender
	a.Append(netip.MustParseAddr("192.0.2.0"), netip.MustParseAddr("192.0.2.127"))
	a.Append(netip.MustParseAddr("192.0.2.128"), netip.MustParseAddr("192.0.2.255"))
	a.AppendPrefix(netip.MustParsePrefix("198.51.100.0/24"))
	a.AppendPrefix(netip.MustParsePrefix("2001:db8::/32"))
	s, err := a.Set()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	// Output: {192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32}
}

// appendOp is one Append or AppendPrefix call.
type appendOp struct {
	lo, hi netip.Addr
	p      netip.Prefix
	prefix bool // AppendPrefix(p), else Append(lo, hi)
}

func (o appendOp) String() string {
	if o.prefix {
		return o.p.String()
	}
	return o.lo.String() + "-" + o.hi.String()
}

// viaAppender and viaBuilder build the same input both ways; the Builder
// is the reference.
func viaAppender(ops []appendOp) (cidr.Set, error) {
	var a cidr.Appender
	for _, o := range ops {
		if o.prefix {
			a.AppendPrefix(o.p)
		} else {
			a.Append(o.lo, o.hi)
		}
	}
	return a.Set()
}

func viaBuilder(ops []appendOp) (cidr.Set, error) {
	var b cidr.Builder
	for _, o := range ops {
		if o.prefix {
			b.AddPrefix(o.p)
		} else {
			b.AddRange(netipx.IPRangeFrom(o.lo, o.hi))
		}
	}
	return b.Set()
}

func checkAppender(t *testing.T, ops []appendOp) {
	t.Helper()
	got, gerr := viaAppender(ops)
	want, werr := viaBuilder(ops)
	if !got.Equal(want) || (gerr == nil) != (werr == nil) {
		t.Fatalf("input %v:\nAppender %v, error %v\nBuilder  %v, error %v", ops, got, gerr, want, werr)
	}
}

var edgeAddrs = []netip.Addr{
	netip.IPv4Unspecified(),
	netip.MustParseAddr("255.255.255.255"),
	netip.IPv6Unspecified(),
	netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	netip.MustParseAddr("::ffff:0.0.0.0"),
	netip.MustParseAddr("::ffff:255.255.255.255"),
	netip.MustParseAddr("::fffe:ffff:ffff"),
	netip.MustParseAddr("::1:0:0:0"),
	netip.MustParseAddr("2001:db8::ffff:ffff:ffff:ffff"),
	netip.MustParseAddr("2001:db8:0:1::"),
	netip.MustParseAddr("fe80::1%eth0"),
	{}, // invalid
}

// randAppendAddr returns an address of a small universe, so that ranges
// overlap and touch often, with the edges of each space now and then.
func randAppendAddr(rnd *rand.Rand, v6 bool) netip.Addr {
	if rnd.IntN(30) == 0 {
		return edgeAddrs[rnd.IntN(len(edgeAddrs))]
	}
	v := uint16(rnd.IntN(1 << 10))
	if v6 {
		a := netip.MustParseAddr("2001:db8::").As16()
		a[7] = byte(rnd.IntN(2)) // the low word's carry into the high one
		a[14], a[15] = byte(v>>8), byte(v)
		if rnd.IntN(2) == 0 {
			a[8], a[9], a[10], a[11], a[12], a[13] = 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
		}
		return netip.AddrFrom16(a)
	}
	a := netip.AddrFrom4([4]byte{10, 0, byte(v >> 8), byte(v)})
	if rnd.IntN(20) == 0 {
		a = netip.AddrFrom16(a.As16()) // IPv4-mapped
	}
	return a
}

func randAppendOps(rnd *rand.Rand, n int) []appendOp {
	ops := make([]appendOp, n)
	for i := range ops {
		v6 := rnd.IntN(3) == 0
		a, b := randAppendAddr(rnd, v6), randAppendAddr(rnd, v6)
		if rnd.IntN(20) != 0 && b.Less(a) { // sometimes out of order: an error
			a, b = b, a
		}
		if rnd.IntN(3) == 0 && a.IsValid() {
			bits := a.BitLen() - rnd.IntN(10)
			if rnd.IntN(40) == 0 {
				bits = rnd.IntN(a.BitLen() + 2)
			}
			ops[i].p, ops[i].prefix = netip.PrefixFrom(a, bits), true
			continue
		}
		ops[i].lo, ops[i].hi = a, b
	}
	return ops
}

// sortOps orders the input as a sorted source would give it: by first
// address, IPv4 and IPv6 interleaved as they please.
func sortOps(ops []appendOp) {
	first := func(o appendOp) netip.Addr {
		if o.prefix {
			return o.p.Masked().Addr().Unmap()
		}
		return o.lo.Unmap()
	}
	slices.SortStableFunc(ops, func(x, y appendOp) int { return first(x).Compare(first(y)) })
}

func TestAppenderRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		ops := randAppendOps(rnd, 1+rnd.IntN(40))
		switch i % 3 {
		case 0:
			sortOps(ops) // the fast path throughout
		case 1:
			sortOps(ops)
			if len(ops) > 2 { // sorted but for one: the fallback mid-way
				j, k := rnd.IntN(len(ops)), rnd.IntN(len(ops))
				ops[j], ops[k] = ops[k], ops[j]
			}
		}
		checkAppender(t, ops)
	}
}

func TestAppender(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	r := func(lo, hi string) appendOp { return appendOp{lo: a(lo), hi: a(hi)} }
	for _, c := range []struct {
		name string
		ops  []appendOp
		want string
		err  bool
	}{
		{"empty", nil, "", false},
		{"adjacent", []appendOp{r("10.0.0.0", "10.0.0.9"), r("10.0.0.10", "10.0.0.255")}, "10.0.0.0/24", false},
		{"overlapping", []appendOp{r("10.0.0.0", "10.0.0.200"), r("10.0.0.100", "10.0.0.255"), r("10.0.0.5", "10.0.0.6")}, "10.0.0.0/24", false},
		{"gap", []appendOp{r("10.0.0.0", "10.0.0.127"), r("10.0.0.129", "10.0.0.129")}, "10.0.0.0/25 10.0.0.129/32", false},
		{"out of order", []appendOp{{prefix: true, p: p("10.0.1.0/24")}, {prefix: true, p: p("10.0.0.0/24")}, {prefix: true, p: p("2001:db8:1::/48")}, {prefix: true, p: p("2001:db8::/48")}}, "10.0.0.0/23 2001:db8::/47", false},
		{"top of IPv4", []appendOp{r("255.255.255.0", "255.255.255.255"), r("255.255.255.255", "255.255.255.255")}, "255.255.255.0/24", false},
		{"top of IPv6", []appendOp{{prefix: true, p: p("ffff::/16")}, r("ffff:ffff::", "ffff:ffff::1")}, "ffff::/16", false},
		{"all", []appendOp{{prefix: true, p: p("0.0.0.0/0")}, {prefix: true, p: p("::/0")}}, "0.0.0.0/0 ::/0", false},
		{"IPv6 carry into the high word", []appendOp{r("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"), r("2001:db8:0:1::", "2001:db8:0:1::")}, "2001:db8::/64 2001:db8:0:1::/128", false},
		{"IPv4-mapped", []appendOp{r("::ffff:10.0.0.0", "::ffff:10.0.0.255"), {prefix: true, p: p("::ffff:10.0.1.0/120")}}, "10.0.0.0/23", false},
		{"mapped and IPv4 mixed", []appendOp{r("10.0.0.0", "::ffff:10.0.0.255")}, "10.0.0.0/24", false},
		{"crossing the mapped space", []appendOp{r("::fffe:ffff:ffff", "::ffff:0.0.0.0")}, "::fffe:ffff:ffff/128 ::ffff:0.0.0.0/128", false},
		{"zone dropped", []appendOp{r("fe80::1%eth0", "fe80::1%eth0")}, "fe80::1/128", false},
		{"reversed", []appendOp{r("10.0.0.1", "10.0.0.0"), {prefix: true, p: p("10.1.0.0/16")}}, "10.1.0.0/16", true},
		{"reversed IPv6", []appendOp{r("2001:db8::1", "2001:db8::")}, "", true},
		{"mixed families", []appendOp{r("10.0.0.0", "2001:db8::")}, "", true},
		{"zones differ", []appendOp{r("fe80::1%eth0", "fe80::2%eth1")}, "fe80::1/128 fe80::2/128", false},
		{"invalid address", []appendOp{r("10.0.0.0", "10.0.0.1"), {lo: netip.Addr{}, hi: a("10.0.0.1")}}, "10.0.0.0/31", true},
		{"invalid prefix", []appendOp{{prefix: true, p: netip.PrefixFrom(a("10.0.0.0"), 33)}}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := viaAppender(c.ops)
			if got := prefixList(got); got != c.want || (err != nil) != c.err {
				t.Errorf("got %q, error %v; want %q, error %v", got, err, c.want, c.err)
			}
			checkAppender(t, c.ops)
		})
	}
}

func prefixList(s cidr.Set) string {
	var b strings.Builder
	for p := range s.AllPrefixes() {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// TestAppenderReuse holds Set to its promise: the Appender is emptied, and
// what is appended afterwards does not change the Set already returned.
func TestAppenderReuse(t *testing.T) {
	var a cidr.Appender
	a.AppendPrefix(netip.MustParsePrefix("10.0.0.0/24"))
	a.AppendPrefix(netip.MustParsePrefix("2001:db8::/48"))
	first, _ := a.Set()
	a.AppendPrefix(netip.MustParsePrefix("10.0.1.0/24"))
	a.AppendPrefix(netip.MustParsePrefix("2001:db8:1::/48"))
	second, _ := a.Set()
	if got, want := prefixList(first), "10.0.0.0/24 2001:db8::/48"; got != want {
		t.Errorf("first Set = %s, want %s", got, want)
	}
	if got, want := prefixList(second), "10.0.1.0/24 2001:db8:1::/48"; got != want {
		t.Errorf("second Set = %s, want %s", got, want)
	}
}

// FuzzAppender compares the Appender with the Builder on any sequence of
// ranges. Each op is a control byte (prefix or range; each bound's family:
// IPv4, IPv4-mapped, IPv6, zoned IPv6) and two bytes per bound, spread over
// a small space so that ranges meet.
func FuzzAppender(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 9, 0, 0, 10, 0, 255})                         // adjacent IPv4
	f.Add([]byte{0x0a, 0, 0, 0, 9, 0x0a, 0, 10, 0, 255})                   // adjacent IPv6
	f.Add([]byte{0, 0, 100, 0, 200, 0, 0, 0, 0, 50, 0x0a, 1, 0, 1, 9})     // out of order
	f.Add([]byte{0x05, 0, 0, 0, 255, 0x01, 0, 0, 0, 7, 0x80, 0, 0, 24, 0}) // mapped, mixed, prefix
	f.Add([]byte{0x0f, 0, 1, 0, 1, 0x0b, 0, 1, 0, 2})                      // zones
	f.Fuzz(func(t *testing.T, data []byte) {
		var ops []appendOp
		for len(data) >= 5 && len(ops) < 64 {
			c := data[0]
			lo := fuzzAddr(c&3, data[1], data[2])
			hi := fuzzAddr(c>>2&3, data[3], data[4])
			data = data[5:]
			if c&0x80 != 0 {
				ops = append(ops, appendOp{prefix: true, p: netip.PrefixFrom(lo.WithZone(""), int(c>>4&7)*17%(lo.BitLen()+2))})
				continue
			}
			ops = append(ops, appendOp{lo: lo, hi: hi})
		}
		checkAppender(t, ops)
	})
}

func fuzzAddr(family, x, y byte) netip.Addr {
	switch family {
	case 0:
		return netip.AddrFrom4([4]byte{10, x >> 7, x, y})
	case 1:
		return netip.AddrFrom16(netip.AddrFrom4([4]byte{10, x >> 7, x, y}).As16())
	}
	a := netip.MustParseAddr("2001:db8::").As16()
	a[7] = x >> 7
	if x&0x40 != 0 {
		a[8], a[9], a[10], a[11], a[12], a[13] = 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
	}
	a[14], a[15] = x, y
	addr := netip.AddrFrom16(a)
	if family == 3 {
		addr = addr.WithZone(fmt.Sprint("z", x&1))
	}
	return addr
}

// TestAppenderGrow checks that reserved room is used: the ranges appended
// after Grow allocate nothing until Set, and give the same set.
// (AllocsPerRun calls f twice: a warm-up, then the run measured; the
// second time is out of order, which must not allocate either.)
func TestAppenderGrow(t *testing.T) {
	const n = 1000
	lo4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}) }
	hi4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 9}) }
	lo6 := func(i int) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 8), 14: byte(i)})
	}
	var a cidr.Appender
	a.AppendPrefix(netip.MustParsePrefix("8.0.0.0/8"))
	a.Grow(2*n, 2*n)
	allocs := testing.AllocsPerRun(1, func() {
		for i := range n {
			a.Append(lo4(i), hi4(i))
			a.Append(lo6(i), lo6(i))
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations appending into reserved room", allocs)
	}
	got, _ := a.Set()
	var b cidr.Builder
	b.AddPrefix(netip.MustParsePrefix("8.0.0.0/8"))
	for i := range n {
		b.AddRange(netipx.IPRangeFrom(lo4(i), hi4(i)))
		b.AddRange(netipx.IPRangeFrom(lo6(i), lo6(i)))
	}
	if want, _ := b.Set(); !got.Equal(want) || got.NumRanges() != 2*n+1 {
		t.Errorf("after Grow: %d ranges, Builder %d", got.NumRanges(), want.NumRanges())
	}
}
