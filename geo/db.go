package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
// database) and the caller keeps the Set it wants.
type DB struct {
	info    Info
	origins []origin // origins[0] is "no data"
	t4      table[u32]
	t6      table[u128]
	sources []*DB // the merged inputs, by precedence; nil for a single source
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

// Lookup returns the country of addr. It reports false when the data has no
// country for addr or the country was not loaded (Options.Countries).
// IPv4-mapped IPv6 addresses are looked up as IPv4.
func (db *DB) Lookup(addr netip.Addr) (Country, bool) {
	o := &db.origins[db.label(addr)]
	return o.cc, o.cc != ""
}

func (db *DB) label(addr netip.Addr) uint16 {
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is4() {
		return lookup4(&db.t4, key4(addr))
	}
	if addr.Is6() {
		return lookup6(&db.t6, key6(addr))
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
	line := 0
	if t.line != nil {
		line = int(t.line[i])
	}
	return netipx.IPRangeFrom(lo.addr(), hi.addr()), line
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
	group := make([]int, len(db.origins)) // label → group index, −1 for none
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
		group[l] = g
	}
	bs := make([]cidr.Builder, len(idx))
	collectGroups(&db.t4, group, bs)
	collectGroups(&db.t6, group, bs)
	out := make(map[Country]cidr.Set, len(idx))
	for c, g := range idx {
		s, _ := bs[g].Set() // input is valid by construction
		out[c] = s
	}
	return out
}

// collect returns the addresses of the labels in want.
func (db *DB) collect(want []bool) cidr.Set {
	group := make([]int, len(want))
	for l, w := range want {
		group[l] = -1
		if w {
			group[l] = 0
		}
	}
	bs := make([]cidr.Builder, 1)
	collectGroups(&db.t4, group, bs)
	collectGroups(&db.t6, group, bs)
	s, _ := bs[0].Set()
	return s
}

// collectGroups adds each entry of t to the builder of its label's group,
// joining adjacent entries of a group into one range first: the table keeps
// one entry per network, the builder wants as few ranges as it can get.
func collectGroups[K key[K]](t *table[K], group []int, bs []cidr.Builder) {
	type run struct {
		lo, hi K
		open   bool
	}
	runs := make([]run, len(bs))
	flush := func(g int) {
		r := &runs[g]
		if r.open {
			bs[g].AddRange(netipx.IPRangeFrom(r.lo.addr(), r.hi.addr()))
			r.open = false
		}
	}
	n := t.len()
	for i := 0; i < n; i++ {
		g := group[t.label[i]]
		if g < 0 {
			continue
		}
		lo := t.start[i]
		var hi K
		if i+1 < n {
			hi = pred(t.start[i+1])
		} else {
			var zero K
			hi = pred(zero) // the top of the family
		}
		r := &runs[g]
		if r.open && r.hi.succ() == lo {
			r.hi = hi
			continue
		}
		flush(g)
		*r = run{lo, hi, true}
	}
	for g := range runs {
		flush(g)
	}
}
