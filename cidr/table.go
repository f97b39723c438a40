package cidr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/geosteer/geosteer/internal/addrword"
	"go4.org/netipx"
)

// MaxLabel is the largest label a Table holds. Labels are small integers
// chosen by the caller: an index into its own list of countries, address
// lists or rules.
const MaxLabel = 1<<16 - 3

// Internal labels above MaxLabel: no label, and "the answer depends on the
// low 64 bits" in the IPv6 table, which sends the lookup to the fine list.
const (
	labelNone = 1<<16 - 2
	labelFine = 1<<16 - 1
)

// A Table maps addresses to labels, IPv4 and IPv6: the compiled, immutable
// form of a list of (prefix, label) pairs with longest-prefix-match
// semantics, or of labelled Sets.
//
// A Table is built once, by a [TableBuilder] or [TableOf], and then only
// read: Lookup allocates nothing, takes no lock, and may be called from any
// number of goroutines. The zero Table is empty.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are looked up as the IPv4
// addresses they map, and mapped prefixes are added as IPv4 prefixes, as in
// a [Set]. Zones are ignored.
//
// Inside, each family is a partition of its address space into maximal runs
// of one label, compiled into a multibit trie (16 bits, then a stride sized
// to each chunk's number of runs) whose leaves are short sorted arrays of
// packed boundaries. IPv6 is indexed on its high 64 bits; the rare /64 that
// holds a boundary in its low 64 bits is resolved by a binary search over a
// separate, small list. The structure is flat arrays only, about 9 MiB for
// the shared country database (334,000 IPv4 and 216,000 IPv6 runs): a
// lookup reads the top-level entry, in dense regions one to three node
// entries, and a leaf of at most two cache lines.
type Table struct {
	// top6 is v6.top as an array, nil for the zero Table: Lookup reads
	// it without a bounds check, and answers from it alone for most IPv6
	// addresses, before any call. Its entry 0 is
	// labelFine, so that ::/16, where IPv4, IPv4-mapped and invalid
	// addresses fall (As16 gives them zeros there), takes the slow path;
	// zero6 is the real entry.
	top6  *[1 << 16]uint32
	zero6 uint32
	v4    lut[a4]
	v6    lut[uint64]
	fine  []run[a6] // the runs of the /64s split in their low 64 bits
}

// A run is a start and a label, in a partition of an address space sorted by
// start whose first run starts at 0: each run ends where the next begins.
type run[K any] struct {
	start K
	label uint16
}

// Lookup returns the label of addr and true, or 0 and false when no entry of
// the table holds addr.
func (t *Table) Lookup(addr netip.Addr) (label uint16, ok bool) {
	if addr.Is4() {
		return t.lookup4(key4(addr))
	}
	// An IPv6 address whose /16 has one label (most of the IPv6 space,
	// which is mostly empty) is answered from one load, without a call.
	// (Lookup is too large to be inlined: any call to an out-of-line slow
	// path costs 57 of the inliner's budget of 80, and reading a
	// netip.Addr's bytes the rest.)
	if t.top6 != nil {
		if e := t.top6[addrword.Hi16(addr)]; e < labelFine {
			if e == labelNone {
				return 0, false
			}
			return uint16(e), true
		}
	}
	return t.lookup(addr)
}

// key4 returns an IPv4 or IPv4-mapped address as a number, kept in
// registers (from4 is too large to be inlined).
func key4(addr netip.Addr) a4 {
	b := addr.As4()
	return a4(binary.BigEndian.Uint32(b[:]))
}

// key6 returns an IPv6 address as a number. It reads AsSlice, not a copy
// of As16: the copy, a 16-byte load of two 8-byte stores, defeats store
// forwarding.
func key6(addr netip.Addr) a6 {
	b := addr.AsSlice()
	return a6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (t *Table) lookup4(k a4) (label uint16, ok bool) {
	if len(t.v4.top) == 0 {
		return 0, false
	}
	e := t.v4.top[k>>16]
	l := uint16(e)
	if e>>30 != kindLabel {
		l = descend32(&t.v4, e, k)
	}
	if l == labelNone {
		return 0, false
	}
	return l, true
}

// lookup is Lookup's slow path for all but IPv4: IPv4-mapped addresses,
// ::/16, the /16s that hold more than one label, and invalid addresses.
func (t *Table) lookup(addr netip.Addr) (label uint16, ok bool) {
	if !addr.Is6() {
		return 0, false
	}
	if addr.Is4In6() {
		return t.lookup4(key4(addr))
	}
	if len(t.v6.top) == 0 {
		return 0, false
	}
	k := key6(addr)
	e := t.v6.top[k.hi>>48]
	if k.hi>>48 == 0 {
		e = t.zero6
	}
	l := uint16(e)
	if e>>30 != kindLabel {
		l = descend64(&t.v6, e, k.hi)
	}
	if l == labelFine {
		l = t.lookupFine(k)
	}
	if l == labelNone {
		return 0, false
	}
	return l, true
}

// Contains reports whether some entry of the table holds addr.
func (t *Table) Contains(addr netip.Addr) bool {
	_, ok := t.Lookup(addr)
	return ok
}

func (t *Table) lookupFine(k a6) uint16 {
	// The last segment starting at or before k. The /64 of k is split, so
	// the fine list holds the segment covering its first address.
	i, j := 0, len(t.fine)
	for i < j {
		h := int(uint(i+j) >> 1)
		if k.less(t.fine[h].start) {
			j = h
		} else {
			i = h + 1
		}
	}
	return t.fine[i-1].label
}

// A TableBuilder collects (prefix, label) pairs and compiles them into a
// Table. Where prefixes nest, the longest wins; where the same prefix is
// added twice, the later label wins. Ranges and Sets are added as their
// minimal CIDR lists, so the same rule applies to them.
//
// The zero TableBuilder is empty and ready to use. Invalid input (an invalid
// prefix or range, a label above [MaxLabel]) is skipped, and reported once,
// by [TableBuilder.Table]. A TableBuilder is not safe for concurrent use.
type TableBuilder struct {
	e4   []entry[a4]
	e6   []entry[a6]
	seq  uint32
	errs []error
}

// entry is one prefix of a TableBuilder, as the range it covers; seq orders
// the additions.
type entry[K key[K]] struct {
	lo, hi K
	seq    uint32
	label  uint16
}

// AddPrefix maps the addresses of p to label, unless a longer prefix holds
// them. Host bits are ignored.
func (b *TableBuilder) AddPrefix(p netip.Prefix, label uint16) {
	if !p.IsValid() {
		b.errorf("invalid prefix %v", p)
		return
	}
	if !b.checkLabel(label) {
		return
	}
	b.seq++
	a, n := p.Addr(), p.Bits()
	if a.Is4In6() && n >= 96 {
		a, n = a.Unmap(), n-96
	}
	if a.Is4() {
		r := prefixRange4(from4(a), n)
		b.e4 = appendDoubling(b.e4, entry[a4]{r.lo, r.hi, b.seq, label})
		return
	}
	r := prefixRange6(from6(a.WithZone("")), n)
	b.e6 = appendDoubling(b.e6, entry[a6]{r.lo, r.hi, b.seq, label})
}

// AddRange maps the addresses of r to label, as its minimal CIDR list.
func (b *TableBuilder) AddRange(r netipx.IPRange, label uint16) {
	var sb Builder
	sb.AddRange(r)
	s, err := sb.Set()
	if err != nil {
		b.errs = append(b.errs, err)
		return
	}
	b.AddSet(s, label)
}

// AddSet maps the addresses of s to label, as its minimal CIDR list.
func (b *TableBuilder) AddSet(s Set, label uint16) {
	if !b.checkLabel(label) {
		return
	}
	b.seq++
	for _, r := range s.v4 {
		for lo := r.lo; ; {
			k := block4(lo, r.hi)
			hi := lo | a4(uint64(1)<<uint(k)-1)
			b.e4 = appendDoubling(b.e4, entry[a4]{lo, hi, b.seq, label})
			if hi == r.hi {
				break
			}
			lo = hi + 1
		}
	}
	for _, r := range s.v6 {
		for lo := r.lo; ; {
			hi := lo.or(lowMask6(block6(lo, r.hi)))
			b.e6 = appendDoubling(b.e6, entry[a6]{lo, hi, b.seq, label})
			if hi == r.hi {
				break
			}
			lo = hi.succ()
		}
	}
}

// appendDoubling is append, but doubles a full slice: append grows large
// slices by a quarter, so that building a list of a million entries one by
// one allocates five times its final size.
func appendDoubling[S ~[]E, E any](s S, e E) S {
	if len(s) == cap(s) {
		s = slices.Grow(s, max(len(s), 64))
	}
	return append(s, e)
}

func (b *TableBuilder) checkLabel(label uint16) bool {
	if label > MaxLabel {
		b.errorf("label %d above MaxLabel", label)
		return false
	}
	return true
}

func (b *TableBuilder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("cidr: "+format, args...))
}

// Table compiles the pairs added so far and returns the table and, joined,
// the errors of every invalid input seen (each was skipped). It fails only
// for a table of more than about 16 million runs per family.
// The TableBuilder stays usable.
func (b *TableBuilder) Table() (*Table, error) {
	t, err := compileTable(sweep(b.e4), sweep(b.e6))
	if err != nil {
		return nil, err
	}
	return t, errors.Join(b.errs...)
}

// TableOf returns the Table mapping the addresses of sets[i] to label i.
// Where sets overlap, the longest prefix of their minimal CIDR lists wins,
// and between equal prefixes the later set.
func TableOf(sets ...Set) (*Table, error) {
	if len(sets) > MaxLabel+1 {
		return nil, fmt.Errorf("cidr: %d sets, at most %d labels", len(sets), MaxLabel+1)
	}
	var b TableBuilder
	for i, s := range sets {
		b.AddSet(s, uint16(i))
	}
	return b.Table()
}

// sweep turns entries into the partition of the address space they define:
// sorted by start, and by length (shortest first) and order of addition
// where starts are equal, nested prefixes come right after their parents,
// so one pass with a stack of the prefixes still open finds, for every
// address, the innermost prefix. Adjacent runs of one label are merged.
func sweep[K key[K]](es []entry[K]) []run[K] {
	cmp := func(x, y entry[K]) int {
		switch {
		case x.lo != y.lo:
			if x.lo.less(y.lo) {
				return -1
			}
			return 1
		case x.hi != y.hi:
			if y.hi.less(x.hi) { // the wider first
				return -1
			}
			return 1
		}
		return int(x.seq) - int(y.seq)
	}
	if !slices.IsSortedFunc(es, cmp) {
		slices.SortFunc(es, cmp)
	}
	var out []run[K]
	emit := func(start K, label uint16) {
		if n := len(out); n > 0 && out[n-1].label == label {
			return
		}
		out = appendDoubling(out, run[K]{start, label})
	}
	var stack []entry[K]
	var cur K    // the first address not yet emitted
	end := false // every address has been emitted
	top := func() uint16 {
		if len(stack) == 0 {
			return labelNone
		}
		return stack[len(stack)-1].label
	}
	closeTo := func(lo K, bounded bool) {
		// Emit the runs of the open prefixes that end before lo.
		for len(stack) > 0 {
			e := stack[len(stack)-1]
			if bounded && !e.hi.less(lo) {
				return
			}
			if !end && !e.hi.less(cur) {
				emit(cur, e.label)
				var zero K
				cur = e.hi.succ()
				end = cur == zero
			}
			stack = stack[:len(stack)-1]
		}
	}
	for _, e := range es {
		closeTo(e.lo, true)
		if !end && cur.less(e.lo) {
			emit(cur, top())
		}
		cur = e.lo
		end = false
		stack = append(stack, e)
	}
	closeTo(cur, false)
	if !end {
		emit(cur, labelNone)
	}
	return out
}

// Leaf limits: two cache lines of entries (32 × 4 bytes, 16 × 8 bytes), so
// that a leaf search costs at most two line fills while chunks of up to
// that many runs need no node.
const (
	leaf4 = 32
	leaf6 = 16
)

// compileTable compiles the partitions of both families.
func compileTable(p4 []run[a4], p6 []run[a6]) (*Table, error) {
	t := new(Table)
	var err error
	if t.v4, err = compileLUT(p4, leaf4); err != nil {
		return nil, err
	}
	if err := t.compile6(p6); err != nil {
		return nil, err
	}
	return t, nil
}

// compile6 compiles t's IPv6 partition.
func (t *Table) compile6(p6 []run[a6]) error {
	coarse, fine := split64(p6)
	v6, err := compileLUT(coarse, leaf6)
	if err != nil {
		return err
	}
	t.v6, t.fine = v6, fine
	t.top6 = (*[1 << 16]uint32)(t.v6.top)
	t.zero6, t.top6[0] = t.top6[0], labelFine
	return nil
}

// split64 divides an IPv6 partition into a partition of the high 64 bits,
// where a /64 that holds a run boundary in its low 64 bits is labelled
// labelFine, and the list of the runs of those /64s, each /64 starting with
// an entry for its first address.
func split64(p []run[a6]) (coarse []run[uint64], fine []run[a6]) {
	push := func(h uint64, l uint16) {
		n := len(coarse)
		if n > 0 && coarse[n-1].start == h {
			coarse = coarse[:n-1] // an empty run; the next one replaces it
			n--
		}
		if n > 0 && coarse[n-1].label == l {
			return
		}
		coarse = appendDoubling(coarse, run[uint64]{h, l})
	}
	for i, r := range p {
		s, l := r.start, r.label
		h := s.hi
		if s.lo != 0 {
			// A boundary inside the /64 h.
			if n := len(fine); n == 0 || fine[n-1].start.hi != h {
				fine = append(fine, run[a6]{a6{h, 0}, p[i-1].label})
			}
			fine = append(fine, run[a6]{s, l})
			push(h, labelFine)
			if h == ^uint64(0) {
				continue
			}
			h++
		}
		push(h, l)
	}
	return coarse, fine
}

// Compile returns s with a lookup table built for it: Contains on the
// result, and on its copies, costs a table lookup instead of a binary
// search. Compile a set that answers many queries, such as a steering
// rule's; the set algebra's results are not compiled. Building takes about
// as long as building the Set, and the table takes about three times the
// Set's memory (see bits4 and bits6 for its layout).
func (s Set) Compile() Set {
	if s.tab != nil {
		return s
	}
	t := &setTable{v6r: s.v6}
	var err error
	if t.v4, err = compileBits4(s.v4, &t.top4); err != nil {
		return s // over 128 million nodes or 2 billion leaves: keep the binary search
	}
	if t.v6, err = compileBits6(s.v6, &t.top6); err != nil {
		return s
	}
	for i, e := range t.top6 {
		t.first6[i] = uint8(min(e, top6Slow))
	}
	s.tab = t
	return s
}

// A setTable is the lookup table of a compiled Set. It holds the top levels
// of its two tables, so that a lookup answered there reads one entry at a
// constant offset from the table's address, and before them first6, the
// state of each /16 of IPv6 in a byte: 0 out, 1 in, top6Slow (2) go on to
// top6. A uniform stream in 2000::/3 reads 8 KiB of it, which stays in L1,
// where the 32 KiB of top6 it would read do not. It keeps the Set's IPv6
// ranges for the addresses its IPv6 table marks slow.
type setTable struct {
	first6 [1 << 16]uint8
	top6   [1 << 16]uint32 // v6.top
	top4   [1 << 16]uint32 // v4.top
	v4     bits4
	v6     bits6
	v6r    []r6
}

// containsZero is the compiled Set.Contains's path for ::/16, where
// IPv4-mapped and invalid addresses fall too: rare enough for a search.
func (t *setTable) containsZero(addr netip.Addr) bool {
	if addr.Is4In6() {
		return t.v4.contains(key4(addr))
	}
	return addr.Is6() && search6(t.v6r, key6(addr))
}

// containsWide finishes the lookup of addr in the wide leaf of the low
// entry n, or in the ranges when its /64 holds too many boundaries.
func (t *setTable) containsWide(n uint32, addr netip.Addr) bool {
	k := key6(addr)
	in, slow := t.v6.containsWide(n, k)
	if slow {
		return search6(t.v6r, k)
	}
	return in
}
