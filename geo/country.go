package geo

import "sort"

// A Country is an ISO 3166-1 alpha-2 code in upper case, such as "US". The
// zero Country is "", no country.
type Country string

// Continent codes, as MaxMind's GeoIP2 continent.code uses them.
const (
	Africa       = "AF"
	Antarctica   = "AN"
	Asia         = "AS"
	Europe       = "EU"
	NorthAmerica = "NA"
	Oceania      = "OC"
	SouthAmerica = "SA"
)

type isoEntry struct{ code, continent, name string }

//go:generate go run gen_iso.go

func isoLookup(c Country) (isoEntry, bool) {
	i := sort.Search(len(isoTable), func(i int) bool { return isoTable[i].code >= string(c) })
	if i < len(isoTable) && isoTable[i].code == string(c) {
		return isoTable[i], true
	}
	return isoEntry{}, false
}

// Known reports whether c is an assigned ISO 3166-1 alpha-2 code (or XK,
// Kosovo, which the registries and the databases use).
func (c Country) Known() bool {
	_, ok := isoLookup(c)
	return ok
}

// Name returns the country's English short name, or "" for an unknown code.
func (c Country) Name() string {
	e, _ := isoLookup(c)
	return e.name
}

// Continent returns the continent code of the country from the static
// table (GeoNames' assignment), or "" for an unknown code. A [DB] prefers
// the continent its source database gives.
func (c Country) Continent() string {
	e, _ := isoLookup(c)
	return e.continent
}

// validContinent reports whether s is one of the seven continent codes.
func validContinent(s string) bool {
	switch s {
	case Africa, Antarctica, Asia, Europe, NorthAmerica, Oceania, SouthAmerica:
		return true
	}
	return false
}

// parseCode upper-cases a two-letter code; ok is false for anything else.
func parseCode(s string) (Country, bool) {
	if len(s) != 2 {
		return "", false
	}
	var b [2]byte
	for i := 0; i < 2; i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		default:
			return "", false
		}
		b[i] = c
	}
	return Country(b[:]), true
}
