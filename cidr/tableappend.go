package cidr

import (
	"errors"
	"fmt"
	"net/netip"

	"go4.org/netipx"
)

// A TableAppender builds a [Table] from labelled ranges given in ascending
// order, as a walk over sorted data yields them (a MaxMind DB's search
// tree, the runs of one country after another): each range becomes a run
// of the table's partition as it comes, with none of the (prefix, label)
// entries, the sort and the sweep of a [TableBuilder]. For the networks of
// the shared country database that is 98 MiB allocated on the way instead
// of 161, in half the time; compiling the trie takes most of the rest.
//
// Addresses in no range have no label. Input out of order is still
// correct, only slower: from the first range of a family that starts at or
// before the end of the range before it, the TableAppender adds everything
// to a TableBuilder, as [TableBuilder.AddRange] would (so where ranges
// overlap, the longest prefix of their CIDR lists wins, and between equal
// prefixes the later range).
//
// The zero TableAppender is empty and ready to use. Invalid input (an
// invalid address, bounds of different families, a last address below the
// first, a label above [MaxLabel]) is skipped and reported once, by
// [TableAppender.Table]. IPv4-mapped input is handled as by a [Builder]:
// a range wholly inside ::ffff:0:0/96 is IPv4. A TableAppender is not safe
// for concurrent use.
//
// Invariants: p4 is a partition of the IPv4 addresses below next4 (all of
// them when full4), starting at 0, one run per range appended and one of
// no label per gap before a range; likewise p6. b is nil until input comes out of order.
type TableAppender struct {
	p4           []run[a4]
	p6           []run[a6]
	next4        a4
	next6        a6
	full4, full6 bool
	b            *TableBuilder
	errs         []error
}

// Append maps every address from first to last, inclusive, to label.
func (t *TableAppender) Append(first, last netip.Addr, label uint16) {
	if label > MaxLabel {
		t.errs = append(t.errs, fmt.Errorf("cidr: label %d above MaxLabel", label))
		return
	}
	lo, hi := first.WithZone(""), last.WithZone("")
	if lo.Is4In6() && hi.Is4In6() || lo.Is4() != hi.Is4() && lo.Unmap().Is4() && hi.Unmap().Is4() {
		lo, hi = lo.Unmap(), hi.Unmap()
	}
	if !lo.IsValid() || !hi.IsValid() || lo.Is4() != hi.Is4() || hi.Less(lo) {
		t.errs = append(t.errs, fmt.Errorf("cidr: invalid range %v-%v", first, last))
		return
	}
	if t.b == nil {
		if lo.Is4() {
			if k := key4(lo); !t.full4 && t.next4 <= k {
				t.p4, t.next4, t.full4 = appendRun(t.p4, t.next4, k, key4(hi), label)
				return
			}
		} else if k := key6(lo); !t.full6 && !k.less(t.next6) {
			t.p6, t.next6, t.full6 = appendRun(t.p6, t.next6, k, key6(hi), label)
			return
		}
		t.fallBack()
	}
	t.b.AddRange(netipx.IPRangeFrom(lo, hi), label)
}

// appendRun appends the run lo–hi of label to the partition p of the
// addresses below next, after a run of no label for a gap, and returns p,
// the new next, and whether p now covers the whole family. Runs of one
// label are not merged here, so that fallBack replays the input as it came;
// Table merges them.
func appendRun[K key[K]](p []run[K], next, lo, hi K, label uint16) ([]run[K], K, bool) {
	if next != lo {
		p = appendDoubling(p, run[K]{next, labelNone})
	}
	p = appendDoubling(p, run[K]{lo, label})
	next = hi.succ()
	var zero K
	return p, next, next == zero
}

// mergeRuns returns the partition p, ending with a run of no label from
// next unless full, with adjacent runs of one label merged. Input without
// such runs (a walk over maximal runs yields none) is returned as it is,
// the last run written past its end if its capacity allows: the table
// compiled from it keeps none of it, and the caller's p is not changed.
func mergeRuns[K key[K]](p []run[K], next K, full bool) []run[K] {
	out := p
	for i := 1; i < len(p); i++ {
		if p[i-1].label == p[i].label {
			out = make([]run[K], 0, len(p)+1)
			for _, r := range p {
				if n := len(out); n == 0 || out[n-1].label != r.label {
					out = append(out, r)
				}
			}
			break
		}
	}
	if !full {
		if n := len(out); n == 0 || out[n-1].label != labelNone {
			out = append(out, run[K]{next, labelNone})
		}
	}
	return out
}

// fallBack hands the runs appended so far to a TableBuilder, for input out
// of order.
func (t *TableAppender) fallBack() {
	t.b = new(TableBuilder)
	replay(t.p4, t.next4, t.full4, func(lo, hi a4, l uint16) {
		t.b.AddRange(netipx.IPRangeFrom(lo.addr(), hi.addr()), l)
	})
	replay(t.p6, t.next6, t.full6, func(lo, hi a6, l uint16) {
		t.b.AddRange(netipx.IPRangeFrom(lo.addr(), hi.addr()), l)
	})
	t.p4, t.p6 = nil, nil
}

// replay calls f for each labelled run of the partition p of the addresses
// below next (all of them when full).
func replay[K key[K]](p []run[K], next K, full bool, f func(lo, hi K, l uint16)) {
	for i, r := range p {
		end := next.pred()
		if i+1 < len(p) {
			end = p[i+1].start.pred()
		} else if full {
			var zero K
			end = zero.pred()
		}
		if r.label != labelNone {
			f(r.start, end, r.label)
		}
	}
}

// Table compiles the ranges appended so far and returns the table and,
// joined, the errors of every invalid input seen (each was skipped). It
// fails only for a table of more than about 16 million runs per family.
// The TableAppender stays usable.
func (t *TableAppender) Table() (*Table, error) {
	if t.b != nil {
		tab, err := t.b.Table()
		if tab == nil {
			return nil, err
		}
		return tab, errors.Join(append(t.errs[:len(t.errs):len(t.errs)], err)...)
	}
	tab, err := compileTable(mergeRuns(t.p4, t.next4, t.full4), mergeRuns(t.p6, t.next6, t.full6))
	if err != nil {
		return nil, err
	}
	return tab, errors.Join(t.errs...)
}
