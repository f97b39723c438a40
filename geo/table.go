package geo

import "slices"

// A table maps every address of one family to a label: entry i covers the
// addresses from its start up to the next entry's start − 1 (the last
// entry up to the top of the family). Label 0 is "no data"; an empty table
// maps everything to 0.
//
// The entries are held in parts of partLen entries (the last part may hold
// fewer), so that a table is built by appending without ever being copied:
// growing one slice by doubling copies a million-network table several
// times over and, at its peak, holds it twice. Entry i is entry i%partLen
// of part i/partLen.
//
// Invariants: starts are strictly ascending over the whole table and,
// unless the table is empty, the first is 0; every part but the last is
// full and none is empty; first[p] is part p's first start; every part has
// a line slice exactly when lines is set; runs[l] is the number of entries
// with label l whose predecessor has another label (the first entry
// counts), runs is no longer than one past the largest label, and last is
// the last entry's label.
//
// A table is the single representation a DB keeps: lookups search it,
// country sets are views built from it, and Explain finds the source's
// network as the entry holding the address. Sources keep one entry per
// network of the file, so the entry is the network the file gave.
type table[K key[K]] struct {
	parts []part[K]
	first []K
	n     int
	lines bool   // keep each entry's source line
	runs  []int  // per label, the runs of entries with that label
	last  uint16 // the last entry's label, if n > 0
}

type part[K any] struct {
	start []K
	label []uint16
	line  []uint32
}

const (
	partBits = 13
	partLen  = 1 << partBits
)

func (t *table[K]) len() int { return t.n }

func (t *table[K]) startAt(i int) K      { return t.parts[i>>partBits].start[i&(partLen-1)] }
func (t *table[K]) labelAt(i int) uint16 { return t.parts[i>>partBits].label[i&(partLen-1)] }
func (t *table[K]) lineAt(i int) uint32 {
	if !t.lines {
		return 0
	}
	return t.parts[i>>partBits].line[i&(partLen-1)]
}

// push appends an entry; its start must be above the last one's.
func (t *table[K]) push(start K, label uint16, line uint32) {
	if t.n == 0 || label != t.last {
		if int(label) >= len(t.runs) {
			t.runs = append(t.runs, make([]int, int(label)+1-len(t.runs))...)
		}
		t.runs[label]++
		t.last = label
	}
	if t.n&(partLen-1) == 0 {
		p := part[K]{start: make([]K, 0, partLen), label: make([]uint16, 0, partLen)}
		if t.lines {
			p.line = make([]uint32, 0, partLen)
		}
		t.parts = append(t.parts, p)
		t.first = append(t.first, start)
	}
	p := &t.parts[len(t.parts)-1]
	p.start = append(p.start, start)
	p.label = append(p.label, label)
	if t.lines {
		p.line = append(p.line, line)
	}
	t.n++
}

// bounds returns the first and last address of entry i; for the last
// entry full is set and hi is meaningless (the entry runs to the top).
func (t *table[K]) bounds(i int) (lo, hi K, full bool) {
	lo = t.startAt(i)
	if i+1 < t.n {
		return lo, pred(t.startAt(i + 1)), false
	}
	return lo, lo, true // hi is the top of the family
}

// index returns the entry holding k, or -1 if the table is empty.
func (t *table[K]) index(k K) int {
	p := search(t.first, k)
	if p < 0 {
		return -1
	}
	return p<<partBits + search(t.parts[p].start, k)
}

// search returns the last index of s whose element is ≤ k, or -1.
func search[K key[K]](s []K, k K) int {
	i, j := 0, len(s)
	for i < j {
		h := int(uint(i+j) >> 1)
		if k.less(s[h]) {
			j = h
		} else {
			i = h + 1
		}
	}
	return i - 1
}

// labelOf returns the label of the entry holding k, 0 (no data) if none.
// Lookups go through the compiled cidr.Table; this serves Explain and a
// DB whose table could not be compiled.
func labelOf[K key[K]](t *table[K], k K) uint16 {
	i := t.index(k)
	if i < 0 {
		return 0
	}
	return t.labelAt(i)
}

func pred[K key[K]](k K) K {
	switch v := any(k).(type) {
	case u32:
		return any(v - 1).(K)
	case u128:
		if v.lo == 0 {
			return any(u128{v.hi - 1, ^uint64(0)}).(K)
		}
		return any(u128{v.hi, v.lo - 1}).(K)
	}
	panic("unreachable")
}

// An interval is one entry of a source given out of order.
type interval[K key[K]] struct {
	lo, hi K
	label  uint16
	line   uint32
}

// A tableBuilder builds a table from labelled intervals. Input in ascending,
// non-overlapping order (a MaxMind DB's tree walk, a sorted CSV) is appended
// directly; anything else is collected, sorted and swept at the end, where
// overlapping intervals of different labels are errors.
type tableBuilder[K key[K]] struct {
	t         table[K]      // the entries appended in order
	lastLabel uint16        // label of the last entry; valid when t.n > 0
	next      K             // first address not yet covered
	full      bool          // covered up to the top of the family
	lines     bool          // record lines
	other     uint16        // a label whose adjacent entries merge (besides 0)
	ivs       []interval[K] // out-of-order mode when non-nil
	unsorted  bool
	overlap   func(a, b interval[K]) error // reports a conflict between two labels
	errs      []error
}

func (b *tableBuilder[K]) add(lo, hi K, label uint16, line uint32) {
	if b.unsorted || b.full || lo.less(b.next) {
		if !b.unsorted {
			b.toIntervals()
		}
		b.ivs = append(b.ivs, interval[K]{lo, hi, label, line})
		return
	}
	b.appendInOrder(lo, hi, label, line)
}

// add4 and add6 are add without the generic dictionary's indirect calls:
// the MaxMind DB walk calls them once per network.
func add4(b *tableBuilder[u32], lo, hi u32, label uint16) {
	if b.unsorted || b.full || lo < b.next {
		b.add(lo, hi, label, 0)
		return
	}
	if b.next < lo {
		b.appendEntry(b.next, 0, 0)
	}
	b.appendEntry(lo, label, 0)
	b.next, b.full = hi+1, hi == ^u32(0)
}

func add6(b *tableBuilder[u128], lo, hi u128, label uint16) {
	if b.unsorted || b.full || lo.hi < b.next.hi || lo.hi == b.next.hi && lo.lo < b.next.lo {
		b.add(lo, hi, label, 0)
		return
	}
	if lo != b.next {
		b.appendEntry(b.next, 0, 0)
	}
	b.appendEntry(lo, label, 0)
	b.next, b.full = hi.succ(), hi.isMax()
}

func (b *tableBuilder[K]) appendInOrder(lo, hi K, label uint16, line uint32) {
	if b.next.less(lo) {
		b.appendEntry(b.next, 0, 0)
	}
	b.appendEntry(lo, label, line)
	b.next, b.full = hi.succ(), hi.isMax()
}

func (b *tableBuilder[K]) appendEntry(start K, label uint16, line uint32) {
	if b.t.n > 0 && b.lastLabel == label && (label == 0 || label == b.other) {
		return
	}
	b.t.lines = b.lines
	b.t.push(start, label, line)
	b.lastLabel = label
}

// toIntervals turns what was appended in order back into intervals.
func (b *tableBuilder[K]) toIntervals() {
	b.unsorted = true
	t := &b.t
	for i := range t.n {
		if t.labelAt(i) == 0 {
			continue
		}
		lo, hi, top := t.bounds(i)
		if top {
			hi = pred(b.next)
		}
		b.ivs = append(b.ivs, interval[K]{lo, hi, t.labelAt(i), t.lineAt(i)})
	}
	b.t = table[K]{}
	var zero K
	b.next, b.full = zero, false
}

// finish returns the table, or the overlap errors found.
func (b *tableBuilder[K]) finish() (table[K], []error) {
	if b.unsorted {
		ivs := b.ivs
		b.ivs = nil
		slices.SortStableFunc(ivs, func(x, y interval[K]) int {
			switch {
			case x.lo.less(y.lo):
				return -1
			case y.lo.less(x.lo):
				return 1
			}
			return 0
		})
		var zero K
		b.next, b.full = zero, false
		b.t = table[K]{}
		var prev interval[K] // the interval that covered b.next−1
		for _, iv := range ivs {
			if !b.full && !iv.lo.less(b.next) {
				b.appendInOrder(iv.lo, iv.hi, iv.label, iv.line)
				prev = iv
				continue
			}
			// Overlap: the same label is a harmless duplicate; a different
			// one is a conflict the data must not hide.
			if iv.label != prev.label && b.overlap != nil {
				if err := b.overlap(prev, iv); err != nil {
					b.errs = append(b.errs, err)
				}
			}
			if b.full || iv.hi.less(b.next) {
				continue // wholly covered already
			}
			b.appendInOrder(b.next, iv.hi, iv.label, iv.line)
			prev = iv
		}
	}
	if b.t.n > 0 && !b.full {
		b.appendEntry(b.next, 0, 0) // the rest of the family has no data
	}
	return b.t, b.errs
}
