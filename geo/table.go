package geo

import "slices"

// A table maps every address of one family to a label: entry i covers the
// addresses from start[i] up to start[i+1]−1 (the last entry up to the top
// of the family). Invariants: start is strictly ascending and, unless the
// table is empty, start[0] is 0; label and, when present, line have the
// length of start. Label 0 is "no data"; an empty table maps everything
// to 0.
//
// A table is the single representation a DB keeps: lookups search it,
// country sets are views built from it, and Explain finds the source's
// network as the entry holding the address. Sources keep one entry per
// network of the file, so the entry is the network the file gave.
type table[K key[K]] struct {
	start []K
	label []uint16
	line  []uint32 // source line of each entry; nil for sources without lines
}

func (t *table[K]) len() int { return len(t.start) }

// bounds returns the first and last address of entry i; for the last
// entry full is set and hi is meaningless (the entry runs to the top).
func (t *table[K]) bounds(i int) (lo, hi K, full bool) {
	lo = t.start[i]
	if i+1 < len(t.start) {
		return lo, pred(t.start[i+1]), false
	}
	return lo, lo, true // hi is the top of the family
}

// index returns the entry holding k, or -1 if the table is empty.
func (t *table[K]) index(k K) int {
	// first entry with start > k, minus one
	i, j := 0, len(t.start)
	for i < j {
		h := int(uint(i+j) >> 1)
		if k.less(t.start[h]) {
			j = h
		} else {
			i = h + 1
		}
	}
	return i - 1
}

// lookup4 is index for IPv4 without the generic indirection: the hot path.
func lookup4(t *table[u32], k u32) uint16 {
	s := t.start
	i, j := 0, len(s)
	for i < j {
		h := int(uint(i+j) >> 1)
		if k < s[h] {
			j = h
		} else {
			i = h + 1
		}
	}
	if i == 0 {
		return 0
	}
	return t.label[i-1]
}

func lookup6(t *table[u128], k u128) uint16 {
	s := t.start
	i, j := 0, len(s)
	for i < j {
		h := int(uint(i+j) >> 1)
		if k.hi < s[h].hi || k.hi == s[h].hi && k.lo < s[h].lo {
			j = h
		} else {
			i = h + 1
		}
	}
	if i == 0 {
		return 0
	}
	return t.label[i-1]
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
	t         table[K] // only while out of order and at the end
	chunks    []chunk[K]
	n         int           // entries in chunks
	lastLabel uint16        // label of the last entry; valid when n > 0
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

func (b *tableBuilder[K]) appendInOrder(lo, hi K, label uint16, line uint32) {
	if b.next.less(lo) {
		b.appendEntry(b.next, 0, 0)
	}
	b.appendEntry(lo, label, line)
	b.next, b.full = hi.succ(), hi.isMax()
}

// A chunk holds appended entries. Entries are appended to fixed-size
// chunks and joined once at the end: growing one slice by doubling copies
// the table several times over and leaves as much garbage, which for a
// million-network file costs more than reading it.
type chunk[K any] struct {
	start []K
	label []uint16
	line  []uint32
}

const chunkLen = 8192

func (b *tableBuilder[K]) appendEntry(start K, label uint16, line uint32) {
	if b.n > 0 && b.lastLabel == label && (label == 0 || label == b.other) {
		return
	}
	if len(b.chunks) == 0 || len(b.chunks[len(b.chunks)-1].start) == chunkLen {
		c := chunk[K]{start: make([]K, 0, chunkLen), label: make([]uint16, 0, chunkLen)}
		if b.lines {
			c.line = make([]uint32, 0, chunkLen)
		}
		b.chunks = append(b.chunks, c)
	}
	c := &b.chunks[len(b.chunks)-1]
	c.start = append(c.start, start)
	c.label = append(c.label, label)
	if b.lines {
		c.line = append(c.line, line)
	}
	b.n++
	b.lastLabel = label
}

// join moves the chunks into b.t.
func (b *tableBuilder[K]) join() {
	t := table[K]{start: make([]K, 0, b.n), label: make([]uint16, 0, b.n)}
	if b.lines {
		t.line = make([]uint32, 0, b.n)
	}
	for i, c := range b.chunks {
		t.start = append(t.start, c.start...)
		t.label = append(t.label, c.label...)
		t.line = append(t.line, c.line...)
		b.chunks[i] = chunk[K]{} // let the collector have it
	}
	b.chunks, b.n, b.t = nil, 0, t
}

// toIntervals turns what was appended in order back into intervals.
func (b *tableBuilder[K]) toIntervals() {
	b.unsorted = true
	b.join()
	t := &b.t
	for i := range t.start {
		if t.label[i] == 0 {
			continue
		}
		lo, hi, top := t.bounds(i)
		if top {
			hi = pred(b.next)
		}
		var line uint32
		if t.line != nil {
			line = t.line[i]
		}
		b.ivs = append(b.ivs, interval[K]{lo, hi, t.label[i], line})
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
	if b.n > 0 && !b.full {
		b.appendEntry(b.next, 0, 0) // the rest of the family has no data
	}
	b.join()
	return b.t, b.errs
}
