package steer

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/geosteer/geosteer/cidr"
	"go4.org/netipx"
)

// memData is a small in-memory country database: the CountryData (and
// Explainer) of the tests.
type memData struct {
	nets      []memNet
	countries map[string]cidr.Set
	conts     map[string]cidr.Set
	unknown   cidr.Set
}

type memNet struct {
	p  netip.Prefix
	cc string
}

// testWorld is enough of a world for the seed policy: the six english
// countries, some others, both families.
const testWorld = `
US NA 3.0.0.0/8 8.0.0.0/9 2600::/12
CA NA 24.48.0.0/13 142.0.0.0/8 2605:8d80::/32
GB EU 81.128.0.0/11 2a00:2380::/25
AU OC 1.128.0.0/11 2400:8800::/25
NZ OC 202.36.0.0/14
IE EU 87.32.0.0/12
FR EU 2.0.0.0/12 90.0.0.0/9 2a01::/16
DE EU 5.0.0.0/10 2003::/19
CN AS 36.0.0.0/8 2408::/16
BR SA 177.0.0.0/8 200.128.0.0/9
`

func newMemData(world string) *memData {
	d := &memData{countries: map[string]cidr.Set{}, conts: map[string]cidr.Set{}}
	var all cidr.Builder
	cont := map[string]*cidr.Builder{}
	for _, line := range strings.Split(strings.TrimSpace(world), "\n") {
		f := strings.Fields(line)
		var b cidr.Builder
		for _, s := range f[2:] {
			p := netip.MustParsePrefix(s)
			d.nets = append(d.nets, memNet{p, f[0]})
			b.AddPrefix(p)
			all.AddPrefix(p)
			if cont[f[1]] == nil {
				cont[f[1]] = &cidr.Builder{}
			}
			cont[f[1]].AddPrefix(p)
		}
		d.countries[f[0]], _ = b.Set()
	}
	for c, b := range cont {
		d.conts[c], _ = b.Set()
	}
	known, _ := all.Set()
	d.unknown = known.Complement()
	return d
}

func (d *memData) Country(cc string) (cidr.Set, error) {
	if s, ok := d.countries[cc]; ok {
		return s, nil
	}
	if cc == "JP" {
		return cidr.Set{}, fmt.Errorf("JP (Japan): no networks in memdata")
	}
	return cidr.Set{}, fmt.Errorf("%q: unknown country", cc)
}

func (d *memData) Continent(code string) (cidr.Set, error) {
	if s, ok := d.conts[code]; ok {
		return s, nil
	}
	return cidr.Set{}, fmt.Errorf("continent %s: no networks in memdata", code)
}

func (d *memData) Unknown() cidr.Set { return d.unknown }

func (d *memData) Origin(a netip.Addr) (Origin, bool) {
	for _, n := range d.nets {
		if n.p.Contains(a) {
			return Origin{Country: n.cc, Source: "memdata", Network: netipx.RangeOfPrefix(n.p)}, true
		}
	}
	return Origin{}, false
}
