package geo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Options control a load. The zero value loads every country.
type Options struct {
	// Name names the source in provenance and errors; default its path.
	Name string

	// Field picks the country of GeoIP2/GeoLite2 records (MaxMind DB and
	// CSV); other schemas have one country only.
	Field Field

	// Countries, when set, keeps only these countries' networks (codes in
	// either case). The others still count as known data (they are not in
	// Unknown) but their networks are not kept, which makes a load for one
	// group much smaller. Lookup reports false for them.
	Countries []string

	// Verify runs maxminddb's full database verification before reading a
	// MaxMind DB. It costs a multiple of the load; the load itself already
	// rejects corrupt files, so this is for auditing downloads.
	Verify bool

	// Progress, if set, is called every 65,536 networks or lines with the
	// count so far, and once at the end with Done set.
	Progress func(Progress)

	// Logger receives a summary of the load and its warnings; nil is
	// silent.
	Logger *slog.Logger
}

// Field selects which country of a GeoIP2/GeoLite2 record to use.
type Field int

const (
	// FieldCountry is the country where the network is used
	// (country.iso_code), or its registered country where the record has
	// no country, as MaxMind's own lookups advise.
	FieldCountry Field = iota
	// FieldRegistered is the country where the ISP registered the network
	// (registered_country.iso_code).
	FieldRegistered
	// FieldRepresented is the country the users represent, such as a
	// military base abroad (represented_country.iso_code), falling back
	// to FieldCountry's answer where there is none.
	FieldRepresented
)

// Progress reports a long load.
type Progress struct {
	Source   string
	Networks int // networks or lines read so far
	Done     bool
}

const progressEvery = 1 << 16

// maxErrors is how many bad lines a load reports before it stops.
const maxErrors = 20

// errTooMany stops a load that has collected maxErrors errors.
var errTooMany = errors.New("too many errors")

type originKey struct {
	cc        Country
	continent string
	file      string
}

// A loader accumulates one source into a DB.
type loader struct {
	ctx      context.Context
	opts     Options
	name     string
	kind     string
	origins  []origin
	labels   map[originKey]uint16
	keep     map[Country]bool // nil: keep all
	other    uint16           // label of data not kept; 0 until needed
	b4       tableBuilder[u32]
	b6       tableBuilder[u128]
	info     Info
	unknown  map[Country]int
	errs     []error
	progress int
}

func newLoader(ctx context.Context, name, kind string, opts *Options, lines bool) (*loader, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	l := &loader{ctx: ctx, name: name, kind: kind, labels: map[originKey]uint16{}, unknown: map[Country]int{}}
	if opts != nil {
		l.opts = *opts
	}
	if l.opts.Name != "" {
		l.name = l.opts.Name
	}
	l.origins = []origin{{}}
	if len(l.opts.Countries) > 0 {
		l.keep = map[Country]bool{}
		var errs []error
		for _, s := range l.opts.Countries {
			c, ok := parseCode(s)
			if !ok || !c.Known() {
				errs = append(errs, fmt.Errorf("geo: Options.Countries: %q: %w", s, ErrUnknownCountry))
				continue
			}
			l.keep[c] = true
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	l.b4.lines, l.b6.lines = lines, lines
	return l, nil
}

// label returns the label for a country of a file, registering it on first
// use. continent "" takes the static table's.
func (l *loader) label(cc Country, continent, file string) (uint16, error) {
	if l.keep != nil && !l.keep[cc] {
		if l.other == 0 {
			if len(l.origins) > 0xffff {
				return 0, fmt.Errorf("geo: %s: more than 65,535 distinct origins", l.name)
			}
			l.other = uint16(len(l.origins))
			l.b4.other, l.b6.other = l.other, l.other
			l.origins = append(l.origins, origin{other: true, file: file})
		}
		return l.other, nil
	}
	k := originKey{cc, continent, file}
	if lb, ok := l.labels[k]; ok {
		return lb, nil
	}
	if len(l.origins) > 0xffff {
		return 0, fmt.Errorf("geo: %s: more than 65,535 distinct origins", l.name)
	}
	if !cc.Known() {
		l.unknown[cc]++ // counted per origin; networks are counted below
	}
	cont := continent
	if !validContinent(cont) {
		cont = cc.Continent()
	}
	lb := uint16(len(l.origins))
	l.origins = append(l.origins, origin{cc: cc, continent: cont, file: file})
	l.labels[k] = lb
	return lb, nil
}

// errorf records an error; it returns errTooMany once there are enough.
func (l *loader) errorf(err error) error {
	l.errs = append(l.errs, err)
	if len(l.errs) >= maxErrors {
		return errTooMany
	}
	return nil
}

// tick counts one network or line, reporting progress and checking for
// cancellation now and then.
func (l *loader) tick() error {
	l.progress++
	if l.progress&(progressEvery-1) != 0 {
		return nil
	}
	if l.opts.Progress != nil {
		l.opts.Progress(Progress{Source: l.name, Networks: l.progress})
	}
	return l.ctx.Err()
}

// finish builds the DB, or reports every error found.
func (l *loader) finish() (*DB, error) {
	t4, errs4 := l.b4.finish()
	t6, errs6 := l.b6.finish()
	l.errs = append(l.errs, errs4...)
	l.errs = append(l.errs, errs6...)
	if len(l.errs) > 0 {
		if len(l.errs) > maxErrors {
			l.errs = append(l.errs[:maxErrors], fmt.Errorf("geo: %s: %d more errors", l.name, len(l.errs)-maxErrors))
		}
		return nil, errors.Join(l.errs...)
	}
	if l.opts.Progress != nil {
		l.opts.Progress(Progress{Source: l.name, Networks: l.progress, Done: true})
	}
	db := &DB{info: l.info, origins: l.origins, t4: t4, t6: t6}
	db.info.Name, db.info.Kind = l.name, l.kind
	for i := range db.origins {
		db.origins[i].src = 0
	}
	db.info.Countries = len(db.Countries())
	var unknown []string
	for c := range l.unknown {
		unknown = append(unknown, string(c))
	}
	slices.Sort(unknown)
	if len(unknown) > 0 {
		db.info.Warnings = append(db.info.Warnings, fmt.Sprintf("country codes outside ISO 3166-1, kept as given: %s", strings.Join(unknown, " ")))
	}
	if db.info.Networks == 0 {
		return nil, fmt.Errorf("geo: %s: %w with a country", l.name, ErrEmpty)
	}
	if l.keep != nil {
		var missing []string
		for c := range l.keep {
			if !slices.Contains(db.Countries(), c) {
				missing = append(missing, string(c))
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			db.info.Warnings = append(db.info.Warnings, "requested countries without networks: "+strings.Join(missing, " "))
		}
	}
	if lg := l.opts.Logger; lg != nil {
		lg.Info("geo: loaded", "source", l.name, "kind", l.kind, "networks", db.info.Networks,
			"countries", db.info.Countries, "entries4", t4.len(), "entries6", t6.len())
		for _, w := range db.info.Warnings {
			lg.Warn("geo: "+w, "source", l.name)
		}
	}
	return db, nil
}
