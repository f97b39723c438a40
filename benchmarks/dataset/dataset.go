// Package dataset loads the benchmark inputs from the shared country
// database once per process.
package dataset

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is the shared database's file name inside ../shared/data.
const DB = "geo-whois-asn-country.mmdb"

// Six are the "english" countries of the seed policy.
var Six = []string{"US", "CA", "GB", "AU", "NZ", "IE"}

// Network is one network of the database with its country.
type Network struct {
	Prefix  netip.Prefix
	Country string
}

var (
	once     sync.Once
	networks []Network
	loadErr  error
)

// Path returns the database path, skipping b (failing in CI) when absent.
func Path(tb testing.TB) string { return testenv.SharedFile(tb, DB) }

// Networks returns every network of the database, IPv4 networks as IPv4
// prefixes, aliased IPv4 subtrees inside IPv6 skipped, in file order.
func Networks(tb testing.TB) []Network {
	path := Path(tb)
	once.Do(func() { networks, loadErr = Load(path) })
	if loadErr != nil {
		tb.Fatal(loadErr)
	}
	return networks
}

// Load reads every network of the database at path (see Networks).
func Load(path string) ([]Network, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var out []Network
	for res := range db.Networks() {
		var rec struct {
			CC string `maxminddb:"country_code"`
		}
		if err := res.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p := res.Prefix()
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, Network{p, rec.CC})
	}
	return out, nil
}

// Select returns the prefixes of the given family (4 or 6) whose country is
// in ccs (all countries when ccs is empty).
func Select(nets []Network, family int, ccs ...string) []netip.Prefix {
	want := map[string]bool{}
	for _, c := range ccs {
		want[c] = true
	}
	var out []netip.Prefix
	for _, n := range nets {
		if n.Prefix.Addr().Is4() != (family == 4) {
			continue
		}
		if len(ccs) == 0 || want[n.Country] {
			out = append(out, n.Prefix)
		}
	}
	return out
}

// Inputs returns the aggregation inputs of the benchmarks:
//
//	A: all IPv4 networks of the six countries
//	B: all IPv4 networks of every country
//	C: the IPv6 networks of the six countries
//	D: B shuffled, with 10% duplicates and 20% of networks split in halves
func Inputs(tb testing.TB) map[string][]netip.Prefix {
	nets := Networks(tb)
	b := Select(nets, 4)
	return map[string][]netip.Prefix{
		"A": Select(nets, 4, Six...),
		"B": b,
		"C": Select(nets, 6, Six...),
		"D": Messy(b, 1),
	}
}

// Messy returns ps shuffled, with about 10% duplicates and 20% of the
// networks (those shorter than /32) replaced by their two halves.
func Messy(ps []netip.Prefix, seed uint64) []netip.Prefix {
	rnd := rand.New(rand.NewPCG(seed, seed))
	out := make([]netip.Prefix, 0, len(ps)*13/10)
	for _, p := range ps {
		max := 32
		if p.Addr().Is6() {
			max = 128
		}
		if p.Bits() < max && rnd.IntN(5) == 0 {
			lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
			// the upper half starts at lo's last address + 1
			r := lastAddr(lo).Next()
			out = append(out, lo, netip.PrefixFrom(r, p.Bits()+1))
		} else {
			out = append(out, p)
		}
		if rnd.IntN(10) == 0 {
			out = append(out, p)
		}
	}
	rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	n := p.Bits()
	for i := range a {
		for bit := 7; bit >= 0; bit-- {
			if i*8+(7-bit) >= n {
				a[i] |= 1 << uint(bit)
			}
		}
	}
	r, _ := netip.AddrFromSlice(a)
	return r
}
