package cidr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// ParseOptions controls how prefix lists are read. The zero value is strict.
type ParseOptions struct {
	// MaskHostBits accepts prefixes with host bits set (10.1.2.3/8) as the
	// masked prefix (10.0.0.0/8). By default they are an error: in a
	// hand-kept list they are usually a typo for something else.
	MaskHostBits bool

	// MaxErrors is how many bad lines are reported before reading stops;
	// 0 means 20.
	MaxErrors int
}

// A ParseError reports a bad line of a prefix list.
type ParseError struct {
	File string // as given by the caller; may be empty
	Line int    // 1-based
	Text string // the entry, without comment and surrounding blanks
	Err  error
}

func (e *ParseError) Error() string {
	name := e.File
	if name == "" {
		name = "<input>"
	}
	return fmt.Sprintf("%s:%d: %q: %v", name, e.Line, e.Text, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Errors a ParseError may wrap.
var (
	ErrHostBits = errors.New("prefix has host bits set")
	ErrSyntax   = errors.New("not an address, prefix or range")
	ErrZone     = errors.New("address has a zone")
	ErrRange    = errors.New("range start after end or families differ")
)

// ParseList reads a prefix list and returns its set. name is used in error
// messages only.
//
// The format is the one operators keep by hand: one entry per line, each an
// address (192.0.2.1, 2001:db8::1), a prefix (192.0.2.0/24) or a range
// (192.0.2.10-192.0.2.20); blank lines, surrounding blanks, CRLF line ends
// and # comments, whole-line or trailing, are allowed.
//
// A bad line never drops data silently: if any line is bad, ParseList
// returns an empty set and an error listing each bad line (up to
// opts.MaxErrors) as a *ParseError with its line number and text.
func ParseList(name string, r io.Reader, opts ParseOptions) (Set, error) {
	var b Builder
	if err := b.ReadList(name, r, opts); err != nil {
		return Set{}, err
	}
	return b.Set()
}

// ReadList adds every entry of a prefix list to b (see [ParseList] for the
// format). If any line is bad, it adds nothing and returns the errors.
func (b *Builder) ReadList(name string, r io.Reader, opts ParseOptions) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("cidr: reading %s: %w", name, err)
	}
	return b.AddList(name, data, opts)
}

// AddList is [Builder.ReadList] on a list already in memory.
func (b *Builder) AddList(name string, data []byte, opts ParseOptions) error {
	maxErrs := opts.MaxErrors
	if maxErrs <= 0 {
		maxErrs = 20
	}
	// Parse into a private batch so that a bad list leaves b untouched.
	var batch Builder
	var errs []error
	text := string(data) // one copy; every entry below is a substring of it
	for line := 1; len(text) > 0; line++ {
		var l string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			l, text = text, ""
		}
		if a, n, ok := parse4(l); ok && (opts.MaskHostBits || prefixRange4(a, n).lo == a) {
			batch.add4.push(prefixRange4(a, n))
			continue
		}
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l) // also drops the \r of CRLF
		if l == "" {
			continue
		}
		if err := batch.addEntry(l, opts.MaskHostBits); err != nil {
			errs = append(errs, &ParseError{File: name, Line: line, Text: l, Err: err})
			if len(errs) >= maxErrs {
				errs = append(errs, fmt.Errorf("%s: too many errors, stopped at line %d", name, line))
				break
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s, _ := batch.Set() // every entry was validated above
	b.AddSet(s)
	return nil
}

// parse4 is the fast path for the commonest line, an IPv4 address or prefix
// in canonical form ("192.0.2.0/24"), optionally followed by blanks and a
// comment. It accepts a subset of what netip.ParsePrefix accepts, with the
// same meaning (a fuzz test checks this), and reports !ok for anything
// else, which then takes the general path and its error messages. Parsing
// dominates the aggregation of a large list, and this path is several times
// faster than netip's general parser.
func parse4(l string) (a a4, bits int, ok bool) {
	i := 0
	for field := 0; field < 4; field++ {
		if field > 0 {
			if i >= len(l) || l[i] != '.' {
				return 0, 0, false
			}
			i++
		}
		v, n := 0, 0
		for i < len(l) && l[i] >= '0' && l[i] <= '9' && n < 4 {
			v = v*10 + int(l[i]-'0')
			i++
			n++
		}
		if n == 0 || n > 3 || v > 255 || n > 1 && l[i-n] == '0' {
			return 0, 0, false
		}
		a = a<<8 | a4(v)
	}
	bits = 32
	if i < len(l) && l[i] == '/' {
		i++
		v, n := 0, 0
		for i < len(l) && l[i] >= '0' && l[i] <= '9' && n < 3 {
			v = v*10 + int(l[i]-'0')
			i++
			n++
		}
		if n == 0 || n > 2 || v > 32 || n > 1 && l[i-n] == '0' {
			return 0, 0, false
		}
		bits = v
	}
	for ; i < len(l); i++ {
		switch l[i] {
		case ' ', '\t', '\r':
		case '#':
			return a, bits, true
		default:
			return 0, 0, false
		}
	}
	return a, bits, true
}

// addEntry adds one trimmed, non-empty entry.
func (b *Builder) addEntry(s string, mask bool) error {
	if i := strings.IndexByte(s, '-'); i >= 0 {
		lo, err := parseAddr(strings.TrimSpace(s[:i]))
		if err != nil {
			return err
		}
		hi, err := parseAddr(strings.TrimSpace(s[i+1:]))
		if err != nil {
			return err
		}
		lo, hi = lo.Unmap(), hi.Unmap()
		if lo.Is4() != hi.Is4() || hi.Less(lo) {
			return ErrRange
		}
		b.AddRange(netipx.IPRangeFrom(lo, hi))
		return nil
	}
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if strings.IndexByte(s, '%') >= 0 {
				return ErrZone
			}
			return ErrSyntax
		}
		if !mask && p.Masked() != p {
			return fmt.Errorf("%w (did you mean %v?)", ErrHostBits, p.Masked())
		}
		b.AddPrefix(p)
		return nil
	}
	a, err := parseAddr(s)
	if err != nil {
		return err
	}
	b.Add(a)
	return nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, ErrSyntax
	}
	if a.Zone() != "" {
		return netip.Addr{}, ErrZone
	}
	return a, nil
}

// WriteList writes the set's minimal prefix list to w, one per line, the
// format ParseList reads.
func (s Set) WriteList(w io.Writer) error {
	var buf bytes.Buffer
	line := make([]byte, 0, 64)
	for p := range s.AllPrefixes() {
		line = append(p.AppendTo(line[:0]), '\n')
		buf.Write(line)
		if buf.Len() > 32<<10 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}
