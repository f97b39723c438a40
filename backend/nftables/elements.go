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

// Sizes of the netlink encoding.
const (
	nlaHdr = 4
	// maxElemList bounds the element list attribute of one message, with
	// room to spare below 0xffff (a netlink attribute length is 16 bits;
	// google/nftables PR #303 uses the same bound).
	maxElemList = 0xffff - 1024
)
