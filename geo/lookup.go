package geo

import (
	"net/netip"
	"sync"

	"github.com/geosteer/geosteer/cidr"
)

// A compiled holds the cidr.Table that Lookup searches, built on the first
// Lookup: the table is faster than a binary search of the DB's own table,
// but building it costs about as much as a load, which a caller that only
// wants sets should not pay. The DB's own table stays for Explain, Diff
// and the sets.
type compiled struct {
	once sync.Once
	tab  *cidr.Table // nil if the table could not be built
	ccs  []Country   // the table's label → country
}

// Lookup returns the country of addr. It reports false when the data has no
// country for addr or the country was not loaded (Options.Countries).
// IPv4-mapped IPv6 addresses are looked up as IPv4.
//
// The first Lookup compiles the DB into a cidr.Table (once, safely for
// concurrent callers); later ones allocate nothing.
func (db *DB) Lookup(addr netip.Addr) (Country, bool) {
	c := &db.lut
	c.once.Do(db.compile)
	if c.tab == nil {
		o := &db.origins[db.label(addr)]
		return o.cc, o.cc != ""
	}
	l, ok := c.tab.Lookup(addr)
	if !ok {
		return "", false
	}
	return c.ccs[l], true
}

// compile builds db.lut: one label per country, each maximal run of a
// country appended in address order.
func (db *DB) compile() {
	ccs := db.Countries()
	if len(ccs) > cidr.MaxLabel+1 {
		return // the binary search serves
	}
	idx := make(map[Country]int32, len(ccs))
	for i, c := range ccs {
		idx[c] = int32(i)
	}
	group := make([]int32, len(db.origins))
	for l, o := range db.origins {
		group[l] = -1
		if g, ok := idx[o.cc]; ok && o.cc != "" {
			group[l] = g
		}
	}
	// The runs come in address order, family by family: a TableAppender
	// takes them as they come. For the shared country database the first
	// Lookup allocates 81 MiB on the way, against 161 through a
	// TableBuilder's prefixes.
	var b cidr.TableAppender
	runs4(&db.t4, group, func(g int32, lo, hi u32) { b.Append(lo.addr(), hi.addr(), uint16(g)) })
	runs6(&db.t6, group, func(g int32, lo, hi u128) { b.Append(lo.addr(), hi.addr(), uint16(g)) })
	tab, err := b.Table()
	if err != nil {
		return // valid input by construction; keep the binary search if not
	}
	db.lut.tab, db.lut.ccs = tab, ccs
}
