package geo

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

// LoadGeoLite2CSV reads MaxMind's GeoLite2 (or GeoIP2) Country or City CSV
// edition from the directory it unpacks to: the blocks files
// (*-Blocks-IPv4.csv, *-Blocks-IPv6.csv) joined on geoname_id with the
// locations file (*-Locations-en.csv, else any *-Locations-*.csv) for the
// country's ISO code and continent. Options.Field picks geoname_id,
// registered_country_geoname_id or represented_country_geoname_id.
func LoadGeoLite2CSV(ctx context.Context, dir string, opts *Options) (*DB, error) {
	find := func(pattern string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		return m
	}
	locs := find("*-Locations-en.csv")
	if len(locs) == 0 {
		locs = find("*-Locations-*.csv")
	}
	blocks := append(find("*-Blocks-IPv4.csv"), find("*-Blocks-IPv6.csv")...)
	if len(locs) == 0 || len(blocks) == 0 {
		return nil, fmt.Errorf("geo: %s: no GeoLite2 CSV blocks and locations files: %w", dir, ErrEmpty)
	}
	open := func(p string) (readCloser, error) { return os.Open(p) }
	return readGeoLite2CSVFiles(ctx, dir, locs[0], blocks, open, opts)
}

type location struct {
	cc        Country
	continent string
}

type readCloser = io.ReadCloser

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

func readGeoLite2CSVFiles(ctx context.Context, name, locPath string, blockPaths []string, open func(string) (readCloser, error), opts *Options) (*DB, error) {
	l, err := newLoader(ctx, name, "geolite2-csv", opts, true)
	if err != nil {
		return nil, err
	}
	l.reportOverlaps()
	f, err := open(locPath)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	locs, err := l.readLocations(locPath, f)
	f.Close()
	if err != nil {
		return nil, err
	}
	for _, p := range blockPaths {
		f, err := open(p)
		if err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
		err = l.readBlocks(p, f, locs)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return l.finish()
}

// csvTable reads a CSV file with a header, giving columns by name.
type csvTable struct {
	name string
	r    *csv.Reader
	cols map[string]int
}

func newCSVTable(name string, r io.Reader, need ...string) (*csvTable, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("geo: %s: reading header: %w", name, err)
	}
	t := &csvTable{name: name, r: cr, cols: map[string]int{}}
	for i, h := range head {
		t.cols[strings.TrimPrefix(h, "\ufeff")] = i
	}
	for _, n := range need {
		if _, ok := t.cols[n]; !ok {
			return nil, &cidr.ParseError{File: name, Line: 1, Text: strings.Join(head, ","), Err: fmt.Errorf("%w: no column %q", ErrFields, n)}
		}
	}
	return t, nil
}

// get returns a named column of rec, "" if it is missing.
func (t *csvTable) get(rec []string, col string) string {
	if i, ok := t.cols[col]; ok && i < len(rec) {
		return rec[i]
	}
	return ""
}

// read returns the next record and its line; io.EOF at the end. A CSV
// syntax error is returned as a *cidr.ParseError.
func (t *csvTable) read() ([]string, int, error) {
	rec, err := t.r.Read()
	line, _ := t.r.FieldPos(0)
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, pe.Line, &cidr.ParseError{File: t.name, Line: pe.Line, Err: pe.Err}
		}
		return nil, line, err
	}
	return rec, line, nil
}

func (l *loader) readLocations(name string, r io.Reader) (map[string]location, error) {
	t, err := newCSVTable(name, r, "geoname_id", "country_iso_code", "continent_code")
	if err != nil {
		return nil, err
	}
	locs := map[string]location{}
	for {
		rec, line, err := t.read()
		if err == io.EOF {
			return locs, nil
		}
		if err != nil {
			return nil, err
		}
		id, code := t.get(rec, "geoname_id"), t.get(rec, "country_iso_code")
		var cc Country
		if code != "" {
			var ok bool
			if cc, ok = parseCode(code); !ok {
				if l.lineError(name, line, []byte(strings.Join(rec, ",")), fmt.Errorf("%w: %q", ErrUnknownCountry, code)) != nil {
					return nil, errTooMany
				}
				continue
			}
		}
		locs[id] = location{cc, t.get(rec, "continent_code")}
	}
}

func (l *loader) readBlocks(name string, r io.Reader, locs map[string]location) error {
	t, err := newCSVTable(name, r, "network", "geoname_id", "registered_country_geoname_id")
	if err != nil {
		return err
	}
	for {
		rec, line, err := t.read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if l.errorf(err) != nil {
				return nil
			}
			continue
		}
		if err := l.tick(); err != nil {
			return fmt.Errorf("geo: %s: %w", name, err)
		}
		ids := []string{t.get(rec, "geoname_id"), t.get(rec, "registered_country_geoname_id")}
		switch l.opts.Field {
		case FieldRegistered:
			ids = ids[1:]
		case FieldRepresented:
			ids = append([]string{t.get(rec, "represented_country_geoname_id")}, ids...)
		}
		var loc location
		var bad error
		for _, id := range ids {
			if id == "" {
				continue
			}
			lc, ok := locs[id]
			if !ok {
				bad = fmt.Errorf("geoname_id %s not in the locations file", id)
				break
			}
			if lc.cc != "" {
				loc = lc
				break
			}
			// A continent-level location (no country): fall back to the
			// next id, as for MaxMind DB records.
		}
		if l.opts.Field == FieldRegistered {
			loc.continent = ""
		}
		p, err := netip.ParsePrefix(t.get(rec, "network"))
		switch {
		case bad != nil:
		case err != nil:
			bad = cidr.ErrSyntax
		case p.Masked() != p:
			bad = cidr.ErrHostBits
		}
		if bad != nil {
			if l.lineError(name, line, []byte(strings.Join(rec, ",")), bad) != nil {
				return nil
			}
			continue
		}
		if loc.cc == "" {
			l.info.NoCountry++
			continue
		}
		lb, err := l.label(loc.cc, loc.continent, name)
		if err != nil {
			return err
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		l.addRange(p.Addr(), lastOf(p), lb, line)
	}
}
