package geo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/geosteer/geosteer/cidr"
)

// Errors a text parser's *cidr.ParseError may wrap, besides cidr's own.
var (
	ErrFields   = errors.New("wrong number of fields")
	ErrCount    = errors.New("address count out of range")
	ErrOverlap  = errors.New("overlaps a line of another country")
	ErrLineLong = errors.New("line too long")
)

// lineReader yields the lines of a text file with their numbers, without
// line ends, skipping blank and comment lines.
type lineReader struct {
	sc   *bufio.Scanner
	line int
}

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	return &lineReader{sc: sc}
}

// next returns the next non-blank, non-comment line, trimmed.
func (lr *lineReader) next() ([]byte, bool) {
	for lr.sc.Scan() {
		lr.line++
		b := bytes.TrimSpace(lr.sc.Bytes())
		if i := bytes.IndexByte(b, '#'); i >= 0 {
			b = bytes.TrimSpace(b[:i])
		}
		if len(b) > 0 {
			return b, true
		}
	}
	return nil, false
}

func (lr *lineReader) err() error {
	if errors.Is(lr.sc.Err(), bufio.ErrTooLong) {
		return ErrLineLong
	}
	return lr.sc.Err()
}

// lineError records a bad line; it returns errTooMany once enough are
// collected.
func (l *loader) lineError(file string, line int, text []byte, err error) error {
	return l.errorf(&cidr.ParseError{File: file, Line: line, Text: string(text), Err: err})
}

// addRange adds lo–hi (same family, lo ≤ hi, unmapped) for a label.
func (l *loader) addRange(lo, hi netip.Addr, label uint16, line int) {
	if lo.Is4() {
		l.b4.add(key4(lo), key4(hi), label, uint32(line))
	} else {
		l.b6.add(key6(lo), key6(hi), label, uint32(line))
	}
	if label != 0 {
		l.info.Networks++
	}
}

// overlaps makes conflicting lines of one source errors that name both.
func (l *loader) reportOverlaps() {
	l.b4.overlap = func(a, b interval[u32]) error {
		return l.overlapError(a.lo.addr(), a.hi.addr(), a.label, a.line, b.lo.addr(), b.hi.addr(), b.label, b.line)
	}
	l.b6.overlap = func(a, b interval[u128]) error {
		return l.overlapError(a.lo.addr(), a.hi.addr(), a.label, a.line, b.lo.addr(), b.hi.addr(), b.label, b.line)
	}
}

func (l *loader) overlapError(alo, ahi netip.Addr, al uint16, aline uint32, blo, bhi netip.Addr, bl uint16, bline uint32) error {
	oa, ob := l.origins[al], l.origins[bl]
	return &cidr.ParseError{
		File: ob.file, Line: int(bline), Text: fmt.Sprintf("%s-%s %s", blo, bhi, ob.cc),
		Err: fmt.Errorf("%w: %s-%s %s at %s:%d", ErrOverlap, alo, ahi, oa.cc, oa.file, aline),
	}
}

func parseAddr(b []byte) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return a, cidr.ErrSyntax
	}
	if a.Zone() != "" {
		return a, cidr.ErrZone
	}
	return a.Unmap(), nil
}

// LoadCSV reads an ip-location-db style CSV file: one range a line,
// "first,last,country" (IPv4 or IPv6, in any order; further columns, as
// in the city files, are ignored). A header line is skipped. Bad lines are
// reported as *cidr.ParseError with the file and line, and load nothing.
func LoadCSV(ctx context.Context, path string, opts *Options) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	defer f.Close()
	return ReadCSV(ctx, path, f, opts)
}

// ReadCSV is LoadCSV for a reader; name is used in errors and provenance.
func ReadCSV(ctx context.Context, name string, r io.Reader, opts *Options) (*DB, error) {
	l, err := newLoader(ctx, name, "csv", opts, true)
	if err != nil {
		return nil, err
	}
	l.reportOverlaps()
	return l.readLines(name, r, func(line int, b []byte) (lo, hi netip.Addr, cc Country, skip bool, err error) {
		f := bytes.SplitN(b, []byte{','}, 4)
		if len(f) < 3 {
			return lo, hi, cc, false, fmt.Errorf("%w: want first,last,country", ErrFields)
		}
		lo, err1 := parseAddr(bytes.TrimSpace(f[0]))
		hi, err2 := parseAddr(bytes.TrimSpace(f[1]))
		if err1 != nil && line == 1 && l.info.Networks == 0 {
			return lo, hi, cc, true, nil // a header
		}
		cc, ok := parseCode(string(bytes.TrimSpace(f[2])))
		switch {
		case err1 != nil:
			err = err1
		case err2 != nil:
			err = err2
		case lo.Is4() != hi.Is4() || hi.Less(lo):
			err = cidr.ErrRange
		case !ok:
			err = fmt.Errorf("%w: %q", ErrUnknownCountry, bytes.TrimSpace(f[2]))
		}
		return lo, hi, cc, false, err
	})
}

// LoadZoneDir reads a directory of per-country prefix lists, one file per
// country named by its code: us.zone, or us-aggregated.zone as ipdeny
// names them (IPv4 and IPv6 lists may share the directory). Each line is a
// prefix or an address; # comments and blank lines are allowed.
func LoadZoneDir(ctx context.Context, dir string, opts *Options) (*DB, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	l, err := newLoader(ctx, dir, "zone", opts, true)
	if err != nil {
		return nil, err
	}
	l.reportOverlaps()
	files := 0
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".zone") {
			continue
		}
		cc, ok := parseCode(strings.SplitN(strings.TrimSuffix(name, ".zone"), "-", 2)[0])
		path := filepath.Join(dir, name)
		if !ok {
			l.errorf(fmt.Errorf("geo: %s: file name does not start with a country code: %w", path, ErrUnknownCountry))
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
		err = l.readZone(path, f, cc)
		f.Close()
		if err != nil {
			return nil, err
		}
		files++
	}
	if files == 0 && len(l.errs) == 0 {
		return nil, fmt.Errorf("geo: %s: no *.zone files: %w", dir, ErrEmpty)
	}
	return l.finish()
}

// ReadZone reads one country's prefix list (see LoadZoneDir).
func ReadZone(ctx context.Context, name string, r io.Reader, cc string, opts *Options) (*DB, error) {
	c, ok := parseCode(cc)
	if !ok {
		return nil, fmt.Errorf("geo: %q: %w", cc, ErrUnknownCountry)
	}
	l, err := newLoader(ctx, name, "zone", opts, true)
	if err != nil {
		return nil, err
	}
	l.reportOverlaps()
	if err := l.readZone(name, r, c); err != nil {
		return nil, err
	}
	return l.finish()
}

func (l *loader) readZone(name string, r io.Reader, cc Country) error {
	lb, err := l.label(cc, "", name)
	if err != nil {
		return err
	}
	lr := newLineReader(r)
	for {
		b, ok := lr.next()
		if !ok {
			break
		}
		if err := l.tick(); err != nil {
			return fmt.Errorf("geo: %s: %w", name, err)
		}
		var p netip.Prefix
		var err error
		if bytes.IndexByte(b, '/') >= 0 {
			p, err = netip.ParsePrefix(string(b))
			switch {
			case err != nil:
				err = cidr.ErrSyntax
			case p.Addr().Zone() != "":
				err = cidr.ErrZone
			case p.Masked() != p:
				err = cidr.ErrHostBits
			}
		} else {
			var a netip.Addr
			a, err = parseAddr(b)
			if err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			if l.lineError(name, lr.line, b, err) != nil {
				return nil
			}
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		l.addRange(p.Masked().Addr(), lastOf(p), lb, lr.line)
	}
	if err := lr.err(); err != nil {
		l.errorf(fmt.Errorf("geo: %s:%d: %w", name, lr.line+1, err))
	}
	return nil
}

func lastOf(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		_, hi := prefixBounds4(p)
		return hi.addr()
	}
	_, hi := prefixBounds6(p)
	return hi.addr()
}

// LoadRIR reads a regional internet registry's delegated statistics file
// (delegated-<rir>-extended-latest, or the plain delegated-<rir>-latest):
// "registry|cc|ipv4|start|count|date|status|...", where an IPv4 count need
// not be a power of two and an IPv6 value is a prefix length. Allocated and
// assigned records count; available and reserved ones have no country.
// Load the five registries' files and Merge them for the whole world.
func LoadRIR(ctx context.Context, path string, opts *Options) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	defer f.Close()
	return ReadRIR(ctx, path, f, opts)
}

// ReadRIR is LoadRIR for a reader.
func ReadRIR(ctx context.Context, name string, r io.Reader, opts *Options) (*DB, error) {
	l, err := newLoader(ctx, name, "rir", opts, true)
	if err != nil {
		return nil, err
	}
	l.reportOverlaps()
	return l.readLines(name, r, func(line int, b []byte) (lo, hi netip.Addr, cc Country, skip bool, err error) {
		f := bytes.Split(b, []byte{'|'})
		if len(f) >= 6 && (string(f[1]) == "*" || string(f[5]) == "summary") {
			return lo, hi, cc, true, nil // summary line
		}
		if len(f) >= 2 && len(f[0]) > 0 && f[0][0] >= '0' && f[0][0] <= '9' {
			return lo, hi, cc, true, nil // version line: 2|ripencc|serial|records|...
		}
		if len(f) < 7 {
			return lo, hi, cc, false, fmt.Errorf("%w: want registry|cc|type|start|value|date|status", ErrFields)
		}
		typ, status := string(f[2]), string(f[6])
		if typ != "ipv4" && typ != "ipv6" {
			return lo, hi, cc, true, nil // asn
		}
		if status != "allocated" && status != "assigned" {
			return lo, hi, cc, true, nil // available, reserved: no country
		}
		lo, hi, err = rirRange(typ, f[3], f[4])
		if err == nil {
			var ok bool
			if cc, ok = parseCode(string(f[1])); !ok {
				err = fmt.Errorf("%w: %q", ErrUnknownCountry, f[1])
			}
		}
		return lo, hi, cc, false, err
	})
}

// readLines is the loop the line-oriented readers share: it hands each
// line to parse, which says whether to skip it or what network and
// country it holds; a bad line is recorded as a file:line error (the
// loader says when to stop), the rest are added. It ends the load.
func (l *loader) readLines(name string, r io.Reader, parse func(line int, b []byte) (lo, hi netip.Addr, cc Country, skip bool, err error)) (*DB, error) {
	lr := newLineReader(r)
	for {
		b, ok := lr.next()
		if !ok {
			break
		}
		if err := l.tick(); err != nil {
			return nil, fmt.Errorf("geo: %s: %w", name, err)
		}
		lo, hi, cc, skip, err := parse(lr.line, b)
		if skip {
			continue
		}
		if err != nil {
			if l.lineError(name, lr.line, b, err) != nil {
				break
			}
			continue
		}
		lb, err := l.label(cc, "", name)
		if err != nil {
			return nil, err
		}
		l.addRange(lo, hi, lb, lr.line)
	}
	if err := lr.err(); err != nil {
		l.errorf(fmt.Errorf("geo: %s:%d: %w", name, lr.line+1, err))
	}
	return l.finish()
}

func rirRange(typ string, start, value []byte) (lo, hi netip.Addr, err error) {
	lo, err = parseAddr(start)
	if err != nil {
		return
	}
	if lo.Is4() != (typ == "ipv4") {
		return lo, lo, cidr.ErrRange
	}
	if typ == "ipv4" {
		n, e := strconv.ParseUint(string(value), 10, 64)
		first := uint64(key4(lo))
		if e != nil || n == 0 || first+n-1 > 0xffffffff {
			return lo, lo, fmt.Errorf("%w: %q from %s", ErrCount, value, lo)
		}
		return lo, u32(first + n - 1).addr(), nil
	}
	bits, e := strconv.Atoi(string(value))
	if e != nil || bits < 0 || bits > 128 {
		return lo, lo, fmt.Errorf("%w: prefix length %q", ErrCount, value)
	}
	p := netip.PrefixFrom(lo, bits)
	if p.Masked() != p {
		return lo, lo, cidr.ErrHostBits
	}
	return lo, lastOf(p), nil
}
