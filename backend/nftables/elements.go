package nftables

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"go4.org/netipx"
)

// An interval set holds each range [lo, hi] as two elements, as nft itself
// sends them: a start element with key lo, and an end element (flag
// NFT_SET_ELEM_INTERVAL_END) with key hi+1, omitted when hi is the family's
// last address. When nft creates a set whose first range does not start at
// the zero address it also sends an end element with key zero; the backend
// does the same so that its sets are element for element those of nft -f.

// rangeElems appends the elements of r to dst.
func rangeElems(dst []nftables.SetElement, r netipx.IPRange) []nftables.SetElement {
	dst = append(dst, nftables.SetElement{Key: addrBytes(r.From())})
	if end := r.To().Next(); end.IsValid() {
		dst = append(dst, nftables.SetElement{Key: addrBytes(end), IntervalEnd: true})
	}
	return dst
}

// zeroEnd is the leading end element at key zero.
func zeroEnd(v6 bool) nftables.SetElement {
	return nftables.SetElement{Key: make([]byte, keyLen(v6)), IntervalEnd: true}
}

func keyLen(v6 bool) int {
	if v6 {
		return 16
	}
	return 4
}

// needsZeroEnd reports whether nft would send the leading zero end element
// when creating a set holding rs.
func needsZeroEnd(rs []netipx.IPRange) bool {
	return len(rs) > 0 && !rs[0].From().IsUnspecified()
}

// errNotIntervals reports kernel set contents that are not a list of
// intervals as this package (or nft) writes them.
var errNotIntervals = errors.New("elements do not form intervals")

// decodeElems turns the elements of an interval set, read back from the
// kernel in any order, into its ranges, sorted. zero reports the leading
// zero end element. Elements that do not pair up into intervals, keys of the
// wrong length and duplicates are errors, never panics.
func decodeElems(es []nftables.SetElement, v6 bool) (rs []netipx.IPRange, zero bool, err error) {
	n := keyLen(v6)
	for i, e := range es {
		if len(e.Key) != n {
			return nil, false, fmt.Errorf("%w: element %d has a %d-byte key, want %d", errNotIntervals, i, len(e.Key), n)
		}
	}
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b nftables.SetElement) int { return bytes.Compare(a.Key, b.Key) })
	var open netip.Addr // start of the interval being read, if valid
	for i, e := range es {
		a, _ := netip.AddrFromSlice(e.Key)
		if i > 0 && bytes.Equal(e.Key, es[i-1].Key) {
			return nil, false, fmt.Errorf("%w: key %v twice", errNotIntervals, a)
		}
		switch {
		case e.IntervalEnd && i == 0 && a.IsUnspecified():
			zero = true
		case e.IntervalEnd:
			if !open.IsValid() {
				return nil, false, fmt.Errorf("%w: end %v without a start", errNotIntervals, a)
			}
			rs = append(rs, netipx.IPRangeFrom(open, a.Prev()))
			open = netip.Addr{}
		default:
			if open.IsValid() {
				return nil, false, fmt.Errorf("%w: start %v inside the interval from %v", errNotIntervals, a, open)
			}
			open = a
		}
	}
	if open.IsValid() { // open to the family's last address
		last := netip.AddrFrom4([4]byte{255, 255, 255, 255})
		if v6 {
			last = netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
		}
		rs = append(rs, netipx.IPRangeFrom(open, last))
	}
	return rs, zero, nil
}

// diffRanges returns the ranges of old not in new and of new not in old,
// both sorted lists of disjoint ranges. A range that changed is removed and
// added whole, as nft does: deleting and re-adding its start in one
// transaction is what the kernel expects, unlike moving a lone end element.
func diffRanges(old, new []netipx.IPRange) (del, add []netipx.IPRange) {
	i, j := 0, 0
	for i < len(old) && j < len(new) {
		o, n := old[i], new[j]
		switch {
		case o == n:
			i++
			j++
		case o.From().Less(n.From()) || (o.From() == n.From() && o.To().Less(n.To())):
			del = append(del, o)
			i++
		default:
			add = append(add, n)
			j++
		}
	}
	del = append(del, old[i:]...)
	add = append(add, new[j:]...)
	return del, add
}

// Sizes of the netlink encoding, to split element lists under the 16-bit
// attribute length and to count the bytes a transaction sends.
const (
	nlaHdr = 4
	nlmHdr = 16 + 4 // nlmsghdr + nfgenmsg
	// maxElemList bounds the element list attribute of one message, with
	// room to spare below 0xffff (google/nftables PR #303 uses the same).
	maxElemList = 0xffff - 1024
)

func align4(n int) int { return (n + 3) &^ 3 }

// elemSize is the encoded size of one element: the nested element, its
// nested key holding the value, and for an end element its flags.
func elemSize(e nftables.SetElement) int {
	n := nlaHdr + nlaHdr + nlaHdr + align4(len(e.Key))
	if e.IntervalEnd {
		n += nlaHdr + 4
	}
	return n
}

// elemMsgSize is the size of one NEWSETELEM/DELSETELEM message whose element
// list attribute holds listBytes: set name, set id, table name, the list.
func elemMsgSize(table, set string, listBytes int) int {
	return nlmHdr + nlaHdr + align4(len(set)+1) + nlaHdr + 4 + nlaHdr + align4(len(table)+1) + nlaHdr + listBytes
}

// chunkElems splits the elements of rs into lists whose encoding fits one
// message, never separating a range's start from its end. first, if not nil,
// goes before the first range.
func chunkElems(rs []netipx.IPRange, first *nftables.SetElement) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	var cur []nftables.SetElement
	size := 0
	if first != nil {
		cur = append(cur, *first)
		size = elemSize(*first)
	}
	var buf [2]nftables.SetElement
	for _, r := range rs {
		pair := rangeElems(buf[:0], r)
		n := 0
		for _, e := range pair {
			n += elemSize(e)
		}
		if size+n > maxElemList && len(cur) > 0 {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, pair...)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
