// Package geo turns country databases into cidr sets: the "list of IP
// blocks of the countries I trust" that geosteer's policies start from.
//
// It reads MaxMind DB files (GeoIP2/GeoLite2 Country and City, DB-IP Lite,
// ip-location-db, IPinfo Lite; the schema is detected from the records),
// ip-location-db CSV files, MaxMind's GeoLite2 CSV edition, directories of
// per-country zone files (ipdeny), and the registries' delegated statistics
// files, and merges several sources by precedence.
//
// A loaded [DB] answers:
//
//   - per-country sets, unions of countries ([DB.Group]) and continents,
//     as aggregated [cidr.Set]s;
//   - the addresses no source has data for ([DB.Unknown]), the "don't care"
//     input for aggregation;
//   - Lookup(addr) → country, and Explain(addr): which source and which of
//     its networks (or lines) gave the answer;
//   - [Diff] between two loads: which countries gained or lost what.
//
// Country codes are ISO 3166-1 alpha-2 in upper case ([Country]); a static
// table gives names and continents. Codes outside ISO 3166-1 that a source
// uses (the registries' EU and AP, the withdrawn AN) are kept and reported in
// [Info.Warnings]; asking for a code that is neither known nor in the data is
// an error, and so is asking for a country without networks.
//
// Bad input returns errors: text parsers report file:line
// (*cidr.ParseError), corrupt MaxMind DB files wrap [ErrCorrupt], and the
// work of reading a file is bounded by its size.
package geo
