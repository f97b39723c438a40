package geo

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// A searchTree reads the search tree of a MaxMind DB file directly, where
// maxminddb.Reader.Networks builds a Result (a netip.Addr and an
// interface-holding struct) per network: the walk is the bulk of a load, and
// a country database has a million networks.
//
// The records are only located here, never decoded: the data section stays
// the library's (Reader.LookupOffset). The walk reports the same networks,
// in the same order and with the same data offsets, as
// Reader.Networks(IncludeNetworksWithoutData()) with the library's default
// alias handling (the tests hold it to that), and also rejects what the
// library would walk for ever: a node reached twice, which a valid tree has
// only for the IPv4 subtree's root, reached again through the IPv6 aliases
// of IPv4 space (::ffff:0:0/96, 2001::/32, 2002::/16) that it skips.
//
// Invariants after newSearchTree: the file holds nodes*recBytes bytes of
// tree followed by the 16-byte separator, so reading any node < nodes is in
// bounds.
type searchTree struct {
	buf       []byte // the whole file
	nodes     uint64 // node count; a record equal to it means "no data"
	recBits   uint   // 24, 28 or 32
	recBytes  uint64 // bytes per node: two records
	v6        bool   // an IPv6 tree; else IPv4, its root at depth 96
	ipv4Start uint64 // the node the path ::/96 leads to, as the library finds it
	dataSize  uint64 // bytes in the data section
}

// dataSeparator is the run of zero bytes between the tree and the data.
const dataSeparator = 16

// notFound is the data offset of a network without data.
const notFound = ^uint64(0)

func newSearchTree(buf []byte, md maxminddb.Metadata) (*searchTree, error) {
	t := &searchTree{buf: buf, nodes: uint64(md.NodeCount), recBits: md.RecordSize, v6: md.IPVersion == 6}
	switch md.RecordSize {
	case 24, 28, 32:
		t.recBytes = uint64(md.RecordSize) / 4
	default:
		return nil, fmt.Errorf("record size %d", md.RecordSize)
	}
	end := bytes.LastIndex(buf, metadataMarker)
	if end < 0 {
		return nil, errors.New("no metadata marker")
	}
	if t.nodes > uint64(end)/t.recBytes || t.nodes*t.recBytes+dataSeparator > uint64(end) {
		return nil, fmt.Errorf("%d nodes of %d bits do not fit before the metadata at %d", t.nodes, t.recBits, end)
	}
	t.dataSize = uint64(end) - t.nodes*t.recBytes - dataSeparator
	if t.v6 {
		// 96 left turns, stopping at a leaf, as Reader.setIPv4Start.
		for i := 0; i < 96 && t.ipv4Start < t.nodes; i++ {
			t.ipv4Start, _ = t.node(t.ipv4Start)
		}
	}
	return t, nil
}

// node returns the two records of node i < t.nodes.
func (t *searchTree) node(i uint64) (left, right uint64) {
	b := t.buf[i*t.recBytes : (i+1)*t.recBytes]
	switch t.recBits {
	case 24:
		left = uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
		right = uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
	case 28:
		left = uint64(b[3]&0xf0)<<20 | uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
		right = uint64(b[3]&0x0f)<<24 | uint64(b[4])<<16 | uint64(b[5])<<8 | uint64(b[6])
	default:
		left = uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		right = uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	}
	return left, right
}

// A leaf is one network of the tree: the address key (IPv6 numbering, the
// IPv4 subtree at ::/96), its prefix length 0–128, and the data section
// offset of its record or notFound.
type leaf struct {
	key  u128
	bits int
	off  uint64
}

// prefix4 reports the leaf as an IPv4 network, as maxminddb's
// Result.Prefix does: a network at depth ≥ 96 inside ::/96.
func (l leaf) prefix4() (lo u32, bits int, ok bool) {
	if l.key.hi != 0 || l.key.lo>>32 != 0 || l.bits < 96 {
		return 0, 0, false
	}
	return u32(l.key.lo), l.bits - 96, true
}

// bounds4 returns the first and last address of the leaf if it is IPv4:
// the IPv4 subtree, or the IPv4-mapped space ::ffff:0:0/96, which cidr
// holds as IPv4 too.
func (l leaf) bounds4() (lo, hi u32, ok bool) {
	if l.key.hi != 0 || l.bits < 96 {
		return 0, 0, false
	}
	if m := l.key.lo >> 32; m != 0 && m != 0xffff {
		return 0, 0, false
	}
	lo = u32(l.key.lo)
	return lo, lo | ^u32(0)>>(l.bits-96), true
}

// bounds6 returns the first and last address of the leaf as IPv6.
func (l leaf) bounds6() (lo, hi u128) {
	n := l.bits
	var mhi, mlo uint64 = ^uint64(0), ^uint64(0) // host mask
	switch {
	case n < 64:
		mhi >>= n
	default:
		mhi, mlo = 0, mlo>>(n-64) // n == 128 shifts to 0
	}
	return l.key, u128{l.key.hi | mhi, l.key.lo | mlo}
}

// prefix returns the leaf as maxminddb's Result.Prefix gives it.
func (l leaf) prefix() netip.Prefix {
	if lo, bits, ok := l.prefix4(); ok {
		return netip.PrefixFrom(lo.addr(), bits)
	}
	return netip.PrefixFrom(l.key.addr(), l.bits)
}

func (l leaf) String() string { return l.prefix().String() }

// errWalk marks the tree errors of a walk; the caller wraps ErrCorrupt.
// errShared is the one the library does not report: it would walk the
// shared subtree again, as often as there are paths to it.
var (
	errWalk   = errors.New("search tree")
	errShared = fmt.Errorf("%w: a node is reached twice", errWalk)
)

// walk calls visit with every network in ascending address order, in
// batches (a call per network costs more than the walk's own work per
// network), stopping at the first error visit returns. The leaves before a
// tree error are visited before the error is returned. Each node is read
// at most once, so the
// work is linear in the tree's size whatever the file holds.
func (t *searchTree) walk(visit func([]leaf) error) error {
	visited := make([]uint64, t.nodes/64+1)
	batch := make([]leaf, 0, 1024)
	fail := func(err error) error {
		if len(batch) > 0 {
			if verr := visit(batch); verr != nil {
				return verr
			}
		}
		return err
	}
	type frame struct {
		ptr  uint64
		key  u128
		bits int
	}
	// One pending right child per depth at most: the stack is bounded.
	var stack [129]frame
	stack[0] = frame{0, u128{}, 0}
	if !t.v6 {
		stack[0].bits = 96
	}
	sp := 1
	for sp > 0 {
		sp--
		f := stack[sp]
		for {
			p := f.ptr
			if p == t.nodes {
				if batch = append(batch, leaf{f.key, f.bits, notFound}); len(batch) == cap(batch) {
					if err := visit(batch); err != nil {
						return err
					}
					batch = batch[:0]
				}
				break
			}
			// The library skips every record equal to ipv4Start outside
			// ::/96: the aliases of the IPv4 subtree.
			if t.ipv4Start != 0 && p == t.ipv4Start && (f.key.hi != 0 || f.key.lo>>32 != 0) {
				break
			}
			if p > t.nodes {
				if p < t.nodes+dataSeparator || p-t.nodes-dataSeparator >= t.dataSize {
					return fail(fmt.Errorf("%w: record %d of network %s points outside the data section", errWalk, p, leaf{f.key, f.bits, 0}))
				}
				if batch = append(batch, leaf{f.key, f.bits, p - t.nodes - dataSeparator}); len(batch) == cap(batch) {
					if err := visit(batch); err != nil {
						return err
					}
					batch = batch[:0]
				}
				break
			}
			if f.bits >= 128 {
				return fail(fmt.Errorf("%w: node %d below a /128", errWalk, p))
			}
			w, m := p/64, uint64(1)<<(p%64)
			if visited[w]&m != 0 { // the root too: it is marked when first read
				return fail(fmt.Errorf("%w: node %d", errShared, p))
			}
			visited[w] |= m
			left, right := t.node(p)
			rkey := f.key
			if f.bits < 64 {
				rkey.hi |= 1 << (63 - f.bits)
			} else {
				rkey.lo |= 1 << (127 - f.bits)
			}
			f.bits++
			stack[sp] = frame{right, rkey, f.bits}
			sp++
			f.ptr = left
		}
	}
	if len(batch) > 0 {
		return visit(batch)
	}
	return nil
}
