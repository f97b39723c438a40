package steer

import (
	"net/netip"

	"github.com/geosteer/geosteer/geo"
)

// *geo.DB is country data as it is; FromGeo adds its provenance.
var _ CountryData = (*geo.DB)(nil)

// FromGeo returns db as country data that is also an [Explainer], so that
// [Plan.Explain] names the database network and source of an answer.
func FromGeo(db *geo.DB) CountryData { return geoData{db} }

type geoData struct{ *geo.DB }

func (g geoData) Origin(a netip.Addr) (Origin, bool) {
	p, ok := g.Explain(a)
	if !ok {
		return Origin{}, false
	}
	return Origin{Country: string(p.Country), Source: p.Source, Network: p.Network, Detail: p.String()}, true
}
