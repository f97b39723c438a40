// Command gensample cuts the small sample database in geo/testdata from
// the shared geo-whois-asn-country database: a seeded random subset of a
// few countries' networks, plus the networks holding a few well-known
// addresses the examples look up, written with MaxMind's mmdbwriter in the
// same schema ({country_code: "US"}).
//
//	cd benchmarks && go run ./cmd/gensample [-in ../../shared/data/geo-whois-asn-country.mmdb]
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
)

var (
	in   = flag.String("in", "../../shared/data/geo-whois-asn-country.mmdb", "source database")
	out  = flag.String("out", "../geo/testdata/sample.mmdb", "sample database to write")
	rate = flag.Float64("rate", 0.004, "fraction of each country's networks to keep")
)

// countries are the six "english" ones of the quick start and a few others.
var countries = map[string]bool{
	"US": true, "CA": true, "GB": true, "AU": true, "NZ": true, "IE": true,
	"DE": true, "FR": true, "JP": true, "BR": true, "CN": true, "RU": true, "IN": true, "ZA": true,
}

// wellKnown are addresses the examples and tests look up.
var wellKnown = []string{"8.8.8.8", "1.1.1.1", "81.2.69.160", "2001:4860:4860::8888", "9.9.9.9", "193.0.6.139", "202.12.29.205"}

func main() {
	flag.Parse()
	r, err := maxminddb.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: "geo-whois-asn-country-sample",
		Description: map[string]string{"en": "A sample of ip-location-db geo-whois-asn-country " +
			r.Metadata.BuildTime().Format("2006-01-02") + " (CC BY 4.0, attribution: Number Resource Organization); see sample.mmdb.LICENSE"},
		RecordSize: 24,
		BuildEpoch: int64(r.Metadata.BuildEpoch),
	})
	if err != nil {
		log.Fatal(err)
	}
	keep := map[netip.Prefix]bool{}
	for _, s := range wellKnown {
		res := r.Lookup(netip.MustParseAddr(s))
		if res.Found() {
			keep[res.Prefix()] = true
		}
	}
	rnd := rand.New(rand.NewPCG(2026, 6))
	n := 0
	for res := range r.Networks() {
		var cc string
		if err := res.DecodePath(&cc, "country_code"); err != nil {
			log.Fatal(err)
		}
		p := res.Prefix()
		if !keep[p] && (!countries[cc] || rnd.Float64() >= *rate) {
			continue
		}
		ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := tree.Insert(ipn, mmdbtype.Map{"country_code": mmdbtype.String(cc)}); err != nil {
			log.Fatalf("%s: %v", p, err)
		}
		n++
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	size, err := tree.WriteTo(f)
	if err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	lic := filepath.Join(filepath.Dir(*out), filepath.Base(*out)+".LICENSE")
	if err := os.WriteFile(lic, []byte(license(r.Metadata.BuildTime().Format("2006-01-02"))), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d networks, %d bytes\n", *out, n, size)
}

func license(date string) string {
	return `sample.mmdb is a small random sample (a fraction of a percent of the networks of
US, CA, GB, AU, NZ, IE, DE, FR, JP, BR, CN, RU, IN and ZA, plus the networks of a
few well-known addresses) of the "geo-whois-asn-country" database of the
ip-location-db project, release of ` + date + `, rewritten with
github.com/maxmind/mmdbwriter by benchmarks/cmd/gensample. It is for examples
and tests only: it leaves most of the address space without data.

The source data is licensed under the Creative Commons Attribution 4.0
International license (CC BY 4.0, https://creativecommons.org/licenses/by/4.0/).
Attribution: the Number Resource Organization (NRO, https://www.nro.net/),
whose WHOIS and delegation data, with geofeeds and IP-to-ASN data, make up
geo-whois-asn-country (https://github.com/sapics/ip-location-db).
Changes: networks were sampled as described above; records were not changed.
`
}
