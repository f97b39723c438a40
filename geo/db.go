package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// Errors that loads and queries wrap.
var (
	// ErrUnknownCountry reports a code that is not an ISO 3166-1 alpha-2
	// code (nor XK).
	ErrUnknownCountry = errors.New("not an ISO 3166-1 alpha-2 country code")
	// ErrEmpty reports a load or a query that found no networks.
	ErrEmpty = errors.New("no networks")
	// ErrCorrupt reports a database whose structure is invalid.
	ErrCorrupt = errors.New("corrupt database")
	// ErrSchema reports a MaxMind DB whose records hold no country field
	// this package knows.
	ErrSchema = errors.New("unrecognised record schema")
)

// An origin is what a label stands for: a country as one file of one
// source gives it.
type origin struct {
	cc        Country
	continent string
	src       int    // index into DB.sources; 0 in a single-source DB
	file      string // file the networks came from (zone files differ per country)
	other     bool   // data exists but the country was not loaded (Options.Countries)
}

// A DB is country data loaded from one source or merged from several: every
// address maps to the country its data gives, or to nothing.
//
// A DB is immutable once loaded and safe for concurrent use. It keeps one
// table per address family that maps address ranges to origins (country and
// source); the country sets are views built from it on request, so asking
// for a set costs one pass over the table (milliseconds for a full
// database) and the caller keeps the Set it wants. Lookup compiles the
// table into a cidr.Table on first use.
type DB struct {
	info    Info
	origins []origin // origins[0] is "no data"
	t4      table[u32]
	t6      table[u128]
	sources []*DB // the merged inputs, by precedence; nil for a single source
	lut     compiled
}

// Info describes a loaded DB.
type Info struct {
	Name         string    // the source's name (Options.Name, else the path)
	Kind         string    // "mmdb", "csv", "geolite2-csv", "zone", "rir", "merged"
	DatabaseType string    // MaxMind DB metadata database_type, if any
	Built        time.Time // MaxMind DB build time or RIR file date, if known
	Networks     int       // networks (or lines) read that carry a country
	NoCountry    int       // networks with a record but no country in it
	Countries    int       // distinct countries
	// Warnings are problems that did not stop the load: country codes
	// outside ISO 3166-1 (such as the registries' EU and AP) and the like.
	Warnings []string
}

// Info returns what was loaded.
func (db *DB) Info() Info { return db.info }

func (db *DB) label(addr netip.Addr) uint16 {
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is4() {
		return labelOf(&db.t4, key4(addr))
	}
	if addr.Is6() {
		return labelOf(&db.t6, key6(addr))
	}
	return 0
}

// Provenance says where a DB's answer for an address came from.
type Provenance struct {
	Country   Country
	Continent string
	Source    string         // the source's name
	Kind      string         // the source's kind (see Info.Kind)
	File      string         // the file within the source
	Line      int            // the line of a text source; 0 for a MaxMind DB
	Network   netipx.IPRange // the source's network (or line's range) holding the address
}

// String formats p for a log line or an explanation.
func (p Provenance) String() string {
	var b strings.Builder
	cc := string(p.Country)
	if cc == "" {
		cc = "(country not loaded)"
	}
	fmt.Fprintf(&b, "%s from %s", cc, p.Source)
	if p.File != "" && p.File != p.Source {
		fmt.Fprintf(&b, " (%s", p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(")")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if pfx, ok := p.Network.Prefix(); ok {
		fmt.Fprintf(&b, " network %s", pfx)
	} else if p.Network.IsValid() {
		fmt.Fprintf(&b, " range %s", p.Network)
	}
	return b.String()
}

// Explain returns which source and which of its networks gave the answer
// for addr; false when no source has data for it.
func (db *DB) Explain(addr netip.Addr) (Provenance, bool) {
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	l := db.label(addr)
	if l == 0 {
		return Provenance{}, false
	}
	o := db.origins[l]
	if db.sources != nil {
		return db.sources[o.src].Explain(addr)
	}
	p := Provenance{Country: o.cc, Continent: o.continent, Source: db.info.Name, Kind: db.info.Kind, File: o.file}
	if addr.Is4() {
		p.Network, p.Line = entryOf(&db.t4, key4(addr))
	} else {
		p.Network, p.Line = entryOf(&db.t6, key6(addr))
	}
	return p, true
}

func entryOf[K key[K]](t *table[K], k K) (netipx.IPRange, int) {
	i := t.index(k)
	lo, hi, top := t.bounds(i)
	if top {
		var zero K
		hi = pred(zero) // the top of the family
	}
	return netipx.IPRangeFrom(lo.addr(), hi.addr()), int(t.lineAt(i))
}

// Countries returns the countries that have networks, sorted.
func (db *DB) Countries() []Country {
	seen := map[Country]bool{}
	for _, o := range db.origins {
		if o.cc != "" {
			seen[o.cc] = true
		}
	}
	out := make([]Country, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Country returns the addresses of one country. A code outside ISO 3166-1
// that the data does not use is an ErrUnknownCountry error, and a country
// without networks an ErrEmpty error.
func (db *DB) Country(cc string) (cidr.Set, error) { return db.Group(cc) }

// Group returns the union of the addresses of the countries given by their
// ISO 3166-1 alpha-2 codes, in either case. Codes the data does not use are
// reported, joined into one error: unknown codes wrap ErrUnknownCountry,
// known countries without networks ErrEmpty. The set of the others is
// returned all the same; a caller that builds policy from it should treat
// any error as fatal.
func (db *DB) Group(ccs ...string) (cidr.Set, error) {
	want := make([]bool, len(db.origins))
	var errs []error
	for _, s := range ccs {
		c, ok := parseCode(s)
		if !ok {
			errs = append(errs, fmt.Errorf("geo: %q: %w", s, ErrUnknownCountry))
			continue
		}
		found := false
		for l, o := range db.origins {
			if o.cc == c {
				want[l] = true
				found = true
			}
		}
		switch {
		case found:
		case !c.Known():
			errs = append(errs, fmt.Errorf("geo: %q: %w", s, ErrUnknownCountry))
		default:
			errs = append(errs, fmt.Errorf("geo: %s (%s): %w in %s", c, c.Name(), ErrEmpty, db.info.Name))
		}
	}
	return db.collect(want), errors.Join(errs...)
}

// Continent returns the addresses of the countries on a continent (AF, AN,
// AS, EU, NA, OC, SA). The continent of each network is the one its source
// gives where it has one (GeoIP2 continent.code, IPinfo continent_code),
// else the static table's for its country.
func (db *DB) Continent(code string) (cidr.Set, error) {
	code = strings.ToUpper(code)
	if !validContinent(code) {
		return cidr.Set{}, fmt.Errorf("geo: %q is not a continent code (AF AN AS EU NA OC SA)", code)
	}
	want := make([]bool, len(db.origins))
	found := false
	for l, o := range db.origins {
		if o.cc != "" && o.continent == code {
			want[l], found = true, true
		}
	}
	if !found {
		return cidr.Set{}, fmt.Errorf("geo: continent %s: %w in %s", code, ErrEmpty, db.info.Name)
	}
	return db.collect(want), nil
}

// Unknown returns the addresses for which no source has data: the "don't
// care" input for aggregation, since no policy can say anything about them.
// Addresses with data for a country that was not loaded are not unknown.
func (db *DB) Unknown() cidr.Set {
	want := make([]bool, len(db.origins))
	want[0] = true
	return db.collect(want)
}

// Sets returns the addresses of every country in one pass over the table.
func (db *DB) Sets() map[Country]cidr.Set {
	idx := map[Country]int{}
	group := make([]int32, len(db.origins)) // label → group index, −1 for none
	for l, o := range db.origins {
		group[l] = -1
		if o.cc == "" {
			continue
		}
		g, ok := idx[o.cc]
		if !ok {
			g = len(idx)
			idx[o.cc] = g
		}
		group[l] = int32(g)
	}
	sets := db.collectSets(group, len(idx))
	out := make(map[Country]cidr.Set, len(idx))
	for c, g := range idx {
		out[c] = sets[g]
	}
	return out
}

// collect returns the addresses of the labels in want.
func (db *DB) collect(want []bool) cidr.Set {
	group := make([]int32, len(want))
	for l, w := range want {
		group[l] = -1
		if w {
			group[l] = 0
		}
	}
	return db.collectSets(group, 1)[0]
}

// parallelEntries is the table size from which collectSets builds the two
// families' sets in parallel: below it a goroutine costs more than it saves.
const parallelEntries = 1 << 16

// collectSets returns the addresses of each group of labels (group[label],
// none if negative). The table yields each group's runs in address order,
// so a cidr.Appender per group builds its set without sorting, in storage
// reserved up front: growing it cost as much as the appending. The count
// comes from the table's run counts where those are exact, else from a
// counting pass (a loose bound reserves, and then copies, too much). The
// families are independent until the end, so with a large table they are
// collected on two goroutines and joined by Union, which for disjoint
// families shares the two halves without copying.
func (db *DB) collectSets(group []int32, n int) []cidr.Set {
	s4 := make([]cidr.Set, n)
	s6 := make([]cidr.Set, n)
	v6 := func() {
		a := make([]cidr.Appender, n)
		cnt, exact := maxRuns(&db.t6, group, n)
		if !exact {
			clear(cnt)
			runs6(&db.t6, group, func(g int32, _, _ u128) { cnt[g]++ })
		}
		for g, m := range cnt {
			a[g].Grow(0, m)
		}
		runs6(&db.t6, group, func(g int32, lo, hi u128) { a[g].Append(lo.addr(), hi.addr()) })
		for g := range a {
			s6[g], _ = a[g].Set() // valid by construction
		}
	}
	var wg sync.WaitGroup
	if db.t4.len()+db.t6.len() >= parallelEntries {
		wg.Go(v6)
	} else {
		v6()
	}
	a := make([]cidr.Appender, n)
	cnt, exact := maxRuns(&db.t4, group, n)
	if !exact {
		clear(cnt)
		runs4(&db.t4, group, func(g int32, _, _ u32) { cnt[g]++ })
	}
	for g, m := range cnt {
		a[g].Grow(m, 0)
	}
	runs4(&db.t4, group, func(g int32, lo, hi u32) { a[g].Append(lo.addr(), hi.addr()) })
	for g := range a {
		s4[g], _ = a[g].Set()
	}
	wg.Wait()
	for g := range s4 {
		s4[g] = s4[g].Union(s6[g])
	}
	return s4
}

// maxRuns returns, for each of n groups, a bound on the runs runs4 and
// runs6 emit for it, and whether the bound is exact. A group's run starts
// where an entry's label differs from the one before, so it is at most the
// sum of its labels' runs, which the table counts as it is built; for a
// group of one label (a country of a single source, or Unknown) that is
// its count.
func maxRuns[K key[K]](t *table[K], group []int32, n int) (bound []int, exact bool) {
	bound = make([]int, n)
	labels := make([]int, n) // labels with runs, per group
	for l, c := range t.runs {
		if g := group[l]; g >= 0 && c > 0 {
			bound[g] += c
			labels[g]++
		}
	}
	return bound, slices.Max(append(labels, 0)) <= 1
}

// runs4 calls emit with each maximal run of table entries whose labels
// belong to one group (group[label], none if negative), in address order:
// the table keeps one entry per network, a Set or a compiled table wants
// as few ranges as it can get. Entries tile the address space, so a
// group's run goes on exactly as long as the entries' group stays the
// same. It and runs6 are written per family because a generic loop calls
// the key's methods indirectly, and Sets runs it over every network of the
// database.
func runs4(t *table[u32], group []int32, emit func(g int32, lo, hi u32)) {
	cur, from := int32(-1), u32(0) // the open run: its group and first address
	for _, p := range t.parts {
		label := p.label[:len(p.start)]
		for i, lo := range p.start {
			g := group[label[i]]
			if g == cur {
				continue
			}
			if cur >= 0 {
				emit(cur, from, lo-1)
			}
			cur, from = g, lo
		}
	}
	if cur >= 0 {
		emit(cur, from, ^u32(0))
	}
}

func runs6(t *table[u128], group []int32, emit func(g int32, lo, hi u128)) {
	cur, from := int32(-1), u128{}
	for _, p := range t.parts {
		label := p.label[:len(p.start)]
		for i, lo := range p.start {
			g := group[label[i]]
			if g == cur {
				continue
			}
			if cur >= 0 {
				emit(cur, from, lo.pred())
			}
			cur, from = g, lo
		}
	}
	if cur >= 0 {
		emit(cur, from, u128{^uint64(0), ^uint64(0)})
	}
}
