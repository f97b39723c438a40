package geo

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	data, unmap, err := mapFile(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("geo: %s: %w: %w", path, ErrCorrupt, err)
	}
	defer unmap()
	return LoadMMDBBytes(ctx, path, data, opts)
}

// readFile reads a file of the given size whole.
func readFile(f *os.File, size int64) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, size), data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// LoadMMDBBytes is LoadMMDB for a database held in memory (an embedded or
// downloaded file). The DB does not keep data.
func LoadMMDBBytes(ctx context.Context, name string, data []byte, opts *Options) (*DB, error) {
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geo: %s: %w: %w", name, ErrCorrupt, err)
	}
	defer r.Close()
	t, err := newSearchTree(data, r.Metadata)
	if err != nil {
		return nil, fmt.Errorf("geo: %s: %w: %w", name, ErrCorrupt, err)
	}
	return loadMMDB(ctx, name, r, t, opts)
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

func loadMMDB(ctx context.Context, name string, r *maxminddb.Reader, t *searchTree, opts *Options) (*DB, error) {
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
	var (
		sch       schema
		cache     = newOffsetCache(t.dataSize)
		lastOff   = notFound
		lastLabel uint16
	)
	err = t.walk(func(leaves []leaf) error {
		for _, lf := range leaves {
			if lf.off == notFound {
				continue // no data: the table's gaps say so
			}
			// Neighbouring networks mostly share a record.
			if lf.off != lastOff {
				lb, ok := cache.get(lf.off)
				if !ok {
					res := r.LookupOffset(uintptr(lf.off))
					if sch == schemaUnknown {
						if sch, err = detectSchema(res); err != nil {
							return fmt.Errorf("geo: %s (database_type %q): %w", l.name, md.DatabaseType, err)
						}
					}
					if lb, err = l.resolve(res, sch); err != nil {
						if l.errorf(fmt.Errorf("geo: %s: network %s: %w", l.name, lf, err)) != nil {
							return errTooMany
						}
						continue
					}
					cache.put(lf.off, lb)
				}
				lastOff, lastLabel = lf.off, lb
			}
			if lastLabel == 0 {
				l.info.NoCountry++
				continue
			}
			l.info.Networks++
			if lo, hi, ok := lf.bounds4(); ok {
				add4(&l.b4, lo, hi, lastLabel)
			} else {
				lo, hi := lf.bounds6()
				add6(&l.b6, lo, hi, lastLabel)
			}
		}
		if err := l.ticks(len(leaves)); err != nil {
			return fmt.Errorf("geo: %s: %w", l.name, err)
		}
		return nil
	})
	switch {
	case errors.Is(err, errWalk):
		return nil, fmt.Errorf("geo: %s: %w: %w", l.name, ErrCorrupt, err)
	case errors.Is(err, errTooMany):
		// finish reports the errors collected
	case err != nil:
		return nil, err
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

// An offsetCache maps a data record's offset to its label. Country
// databases have a few hundred records shared by a million networks, all
// at small offsets, so a dense array serves them; a map takes the rest
// (City databases).
type offsetCache struct {
	dense []uint16 // label+1; 0 for not yet resolved
	more  map[uint64]uint16
}

func newOffsetCache(dataSize uint64) *offsetCache {
	return &offsetCache{dense: make([]uint16, min(dataSize, 1<<16)), more: map[uint64]uint16{}}
}

func (c *offsetCache) get(off uint64) (uint16, bool) {
	if off < uint64(len(c.dense)) {
		v := c.dense[off]
		return v - 1, v != 0
	}
	v, ok := c.more[off]
	return v, ok
}

func (c *offsetCache) put(off uint64, label uint16) {
	if off < uint64(len(c.dense)) && label < 0xffff {
		c.dense[off] = label + 1
		return
	}
	c.more[off] = label
}
