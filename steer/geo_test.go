package steer

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/geo"
	"github.com/geosteer/geosteer/internal/testenv"
)

// TestGeoShared compiles the seed from the shared database through geo,
// and checks Explain's provenance and the Router against the plan.
func TestGeoShared(t *testing.T) {
	path := testenv.SharedFile(t, "geo-whois-asn-country.mmdb")
	db, err := geo.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadFile("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(p, FromGeo(db), &Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	mx1 := netip.MustParseAddr("203.0.113.1")
	for _, tt := range []struct{ src, want string }{
		{"8.8.8.8", "→ a"},           // US, lower half
		{"1.1.1.1", "data: AU from"}, // AU in this database
	} {
		e := plan.Explain(netip.MustParseAddr(tt.src), mx1, 25)
		if !strings.Contains(e.String(), tt.want) || !e.HasOrigin || !e.Origin.Network.IsValid() {
			t.Errorf("Explain(%s) = %v, want %q", tt.src, e, tt.want)
		}
	}
	checkRouter(t, "shared", plan, nil)
}
