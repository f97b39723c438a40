package geo

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"

	"github.com/oschwald/maxminddb-golang/v2"
)

// LoadMMDB reads the country of every network of a MaxMind DB file:
// GeoIP2/GeoLite2 Country or City (country.iso_code, or the field
// Options.Field picks, with continent.code), DB-IP Lite in either the
// GeoIP2 layout or ip-location-db's (country_code), and IPinfo Lite
// (country_code, continent_code). The schema is detected from the records,
// not assumed from the file name or database_type.
//
// A corrupt file returns an error wrapping ErrCorrupt; the work is bounded
// by the file's node count, so crafted search trees cannot make it hang.
func LoadMMDB(ctx context.Context, path string, opts *Options) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	defer f.Close()
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %s: %w: %w", path, ErrCorrupt, err)
	}
	defer r.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	return loadMMDB(ctx, path, r, f, fi.Size(), opts)
}

// LoadMMDBBytes is LoadMMDB for a database held in memory (an embedded or
// downloaded file). The DB does not keep data.
func LoadMMDBBytes(ctx context.Context, name string, data []byte, opts *Options) (*DB, error) {
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geo: %s: %w: %w", name, ErrCorrupt, err)
	}
	defer r.Close()
	return loadMMDB(ctx, name, r, byteReaderAt(data), int64(len(data)), opts)
}

type byteReaderAt []byte

func (b byteReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type schema int

const (
	schemaUnknown schema = iota
	schemaGeoIP2         // country.iso_code, registered_country, represented_country, continent.code
	schemaFlat           // country_code (ip-location-db, DB-IP via ip-location-db, IPinfo Lite), continent_code
)

type isoCode struct {
	ISOCode string `maxminddb:"iso_code"`
}

type geoip2Record struct {
	Country     isoCode `maxminddb:"country"`
	Registered  isoCode `maxminddb:"registered_country"`
	Represented isoCode `maxminddb:"represented_country"`
	Continent   struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
}

type flatRecord struct {
	CountryCode   string `maxminddb:"country_code"`
	ContinentCode string `maxminddb:"continent_code"`
}

func loadMMDB(ctx context.Context, name string, r *maxminddb.Reader, ra io.ReaderAt, size int64, opts *Options) (*DB, error) {
	l, err := newLoader(ctx, name, "mmdb", opts, false)
	if err != nil {
		return nil, err
	}
	md := r.Metadata
	l.info.DatabaseType = md.DatabaseType
	l.info.Built = md.BuildTime()
	if l.opts.Verify {
		if err := r.Verify(); err != nil {
			return nil, fmt.Errorf("geo: %s: %w: %w", l.name, ErrCorrupt, err)
		}
	}
	if err := checkTree(ra, size, md); err != nil {
		return nil, fmt.Errorf("geo: %s: %w: %w", l.name, ErrCorrupt, err)
	}

	var (
		sch       schema
		cache     = newOffsetCache(size)
		lastOff   = ^uintptr(0)
		lastLabel uint16
		lastOK    bool // last record carried a country
		budget    = uint64(md.NodeCount)*2 + 2
	)
	for res := range r.Networks(maxminddb.IncludeNetworksWithoutData()) {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("geo: %s: %w: %w", l.name, ErrCorrupt, err)
		}
		// A tree of n nodes has at most n+1 leaves; more means shared
		// subtrees, which only a crafted file has.
		if budget == 0 {
			return nil, fmt.Errorf("geo: %s: %w: search tree yields more networks than it has nodes", l.name, ErrCorrupt)
		}
		budget--
		if err := l.tick(); err != nil {
			return nil, fmt.Errorf("geo: %s: %w", l.name, err)
		}
		if !res.Found() {
			continue // no data: the table's gaps say so
		}
		off := res.Offset()
		if off != lastOff {
			lb, ok := cache.get(off)
			if !ok {
				if sch == schemaUnknown {
					sch, err = detectSchema(res)
					if err != nil {
						return nil, fmt.Errorf("geo: %s (database_type %q): %w", l.name, md.DatabaseType, err)
					}
				}
				lb, err = l.resolve(res, sch)
				if err != nil {
					if l.errorf(fmt.Errorf("geo: %s: network %s: %w", l.name, res.Prefix(), err)) != nil {
						break
					}
					continue
				}
				cache.put(off, lb)
			}
			lastOff, lastLabel = off, lb
			lastOK = lb != 0
		}
		if !lastOK {
			l.info.NoCountry++
			continue
		}
		l.info.Networks++
		p := res.Prefix()
		if a := p.Addr(); a.Is4In6() {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Addr().Is4() {
			lo, hi := prefixBounds4(p)
			l.b4.add(lo, hi, lastLabel, 0)
		} else {
			lo, hi := prefixBounds6(p)
			l.b6.add(lo, hi, lastLabel, 0)
		}
	}
	if len(l.errs) == 0 && sch == schemaUnknown && l.info.Networks == 0 {
		return nil, fmt.Errorf("geo: %s: %w with data", l.name, ErrEmpty)
	}
	return l.finish()
}

// detectSchema decides from one record which fields hold the country.
func detectSchema(res maxminddb.Result) (schema, error) {
	var rec map[string]any
	if err := res.Decode(&rec); err != nil {
		return schemaUnknown, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	_, country := rec["country"].(map[string]any)
	_, registered := rec["registered_country"].(map[string]any)
	_, continent := rec["continent"].(map[string]any)
	_, code := rec["country_code"].(string)
	switch {
	case code:
		return schemaFlat, nil
	case country || registered || continent:
		return schemaGeoIP2, nil
	}
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return schemaUnknown, fmt.Errorf("%w: record at offset %d has keys %q, no country_code or country.iso_code", ErrSchema, res.Offset(), keys)
}

// resolve returns the label of a record, 0 if it has no country.
func (l *loader) resolve(res maxminddb.Result, sch schema) (uint16, error) {
	var cc, cont string
	switch sch {
	case schemaGeoIP2:
		var rec geoip2Record
		if err := res.Decode(&rec); err != nil {
			return 0, err
		}
		cont = rec.Continent.Code
		switch l.opts.Field {
		case FieldRegistered:
			cc = rec.Registered.ISOCode
		case FieldRepresented:
			cc = rec.Represented.ISOCode
			if cc == "" {
				cc = rec.Country.ISOCode
			}
			if cc == "" {
				cc = rec.Registered.ISOCode
			}
		default:
			cc = rec.Country.ISOCode
			if cc == "" {
				cc = rec.Registered.ISOCode
			}
		}
	case schemaFlat:
		var rec flatRecord
		if err := res.Decode(&rec); err != nil {
			return 0, err
		}
		cc, cont = rec.CountryCode, rec.ContinentCode
	}
	if cc == "" {
		return 0, nil
	}
	c, ok := parseCode(cc)
	if !ok {
		return 0, fmt.Errorf("country code %q is not two letters", cc)
	}
	if sch == schemaGeoIP2 && l.opts.Field == FieldRegistered {
		cont = "" // continent.code is the network's, not the registrant's
	}
	return l.label(c, cont, l.name)
}

// checkTree bounds the work of walking a MaxMind DB search tree. A valid
// tree gives each node one parent, except the root of the IPv4 subtree,
// which the IPv6 aliases (::ffff:0:0/96, 2002::/16, ...) also point at and
// which the iterator skips there. A crafted file that shares other nodes
// can make the number of paths exponential, so it is rejected here, in one
// linear read of the tree.
func checkTree(ra io.ReaderAt, size int64, md maxminddb.Metadata) error {
	n := uint64(md.NodeCount)
	var nodeBytes uint64
	switch md.RecordSize {
	case 24, 28, 32:
		nodeBytes = uint64(md.RecordSize) / 4
	default:
		return fmt.Errorf("record size %d", md.RecordSize)
	}
	if n == 0 || n > uint64(size)/nodeBytes {
		return fmt.Errorf("node count %d does not fit a %d-byte file", n, size)
	}
	read := func(buf []byte) (left, right uint64) {
		switch md.RecordSize {
		case 24:
			left = uint64(buf[0])<<16 | uint64(buf[1])<<8 | uint64(buf[2])
			right = uint64(buf[3])<<16 | uint64(buf[4])<<8 | uint64(buf[5])
		case 28:
			left = uint64(buf[3]&0xf0)<<20 | uint64(buf[0])<<16 | uint64(buf[1])<<8 | uint64(buf[2])
			right = uint64(buf[3]&0x0f)<<24 | uint64(buf[4])<<16 | uint64(buf[5])<<8 | uint64(buf[6])
		default:
			left = uint64(buf[0])<<24 | uint64(buf[1])<<16 | uint64(buf[2])<<8 | uint64(buf[3])
			right = uint64(buf[4])<<24 | uint64(buf[5])<<16 | uint64(buf[6])<<8 | uint64(buf[7])
		}
		return
	}
	// The IPv4 subtree's root: 96 left turns from the root.
	ipv4Start := uint64(0)
	if md.IPVersion == 6 {
		var buf [8]byte
		for i := 0; i < 96 && ipv4Start < n; i++ {
			if _, err := ra.ReadAt(buf[:nodeBytes], int64(ipv4Start*nodeBytes)); err != nil {
				return fmt.Errorf("reading node %d: %w", ipv4Start, err)
			}
			ipv4Start, _ = read(buf[:])
		}
	}
	// seen marks nodes that have a parent. The root and the IPv4 root
	// start marked: the root may have none, the IPv4 root many.
	seen := make([]uint64, (n+63)/64)
	seen[0] |= 1
	seen[ipv4Start/64] |= 1 << (ipv4Start % 64)
	var dup uint64 // a node with two parents, or 0 (the root cannot be one)
	buf := make([]byte, 64<<10-(64<<10)%nodeBytes)
	for i := uint64(0); i < n; {
		chunk := min(uint64(len(buf))/nodeBytes, n-i)
		b := buf[:chunk*nodeBytes]
		if _, err := ra.ReadAt(b, int64(i*nodeBytes)); err != nil {
			return fmt.Errorf("reading search tree: %w", err)
		}
		for len(b) >= int(nodeBytes) {
			left, right := read(b)
			b = b[nodeBytes:]
			// Pointers ≥ n are data or "none": leaves.
			if left < n {
				w, m := left/64, uint64(1)<<(left%64)
				if seen[w]&m != 0 && left != ipv4Start {
					dup = left
				}
				seen[w] |= m
			}
			if right < n {
				w, m := right/64, uint64(1)<<(right%64)
				if seen[w]&m != 0 && right != ipv4Start {
					dup = right
				}
				seen[w] |= m
			}
		}
		if dup != 0 {
			return fmt.Errorf("search tree node %d has two parents", dup)
		}
		i += chunk
	}
	return nil
}

// An offsetCache maps a data record's offset to its label. Country
// databases have a few hundred records shared by a million networks, all
// at small offsets, so a dense array serves them; a map takes the rest
// (City databases).
type offsetCache struct {
	dense []uint16 // label+1; 0 for not yet resolved
	more  map[uintptr]uint16
}

func newOffsetCache(fileSize int64) *offsetCache {
	return &offsetCache{dense: make([]uint16, min(fileSize, 1<<16)), more: map[uintptr]uint16{}}
}

func (c *offsetCache) get(off uintptr) (uint16, bool) {
	if off < uintptr(len(c.dense)) {
		v := c.dense[off]
		return v - 1, v != 0
	}
	v, ok := c.more[off]
	return v, ok
}

func (c *offsetCache) put(off uintptr, label uint16) {
	if off < uintptr(len(c.dense)) && label < 0xffff {
		c.dense[off] = label + 1
		return
	}
	c.more[off] = label
}
