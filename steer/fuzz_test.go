package steer

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
)

// FuzzLoad feeds the loader arbitrary files: it must return a policy or
// errors, never panic or hang, and a policy it accepts must compile (or
// be refused with errors) into a plan whose Router agrees with it.
func FuzzLoad(f *testing.F) {
	seed, err := os.ReadFile("testdata/seed.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(seedYAML))
	data := newMemData(testWorld)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Load("fuzz.yaml", bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		plan, err := Compile(p, data, &Options{Now: testNow, Backends: []Capabilities{Splitter}})
		if err != nil {
			return
		}
		checkRouter(t, "fuzz", plan, rand.New(rand.NewPCG(1, 1)))
	})
}

// FuzzRouter routes arbitrary connections (sources and destinations of
// 4 or 16 bytes, else the invalid address; with a zone or not) through
// the seed's plan, one with a hash split, and one whose entry points are
// the unspecified addresses: the Router and its Entry must answer as
// Plan.Route.
func FuzzRouter(f *testing.F) {
	hash := loadString(f, seedYAML[:len(seedYAML)-len("  - {name: split, split: [a, b]}\n")]+
		"  - {name: split, split: [a, b, foreign], weights: [3, 2, 1], by: hash, seed: 0x2a}\n")
	var plans []*Plan
	for _, p := range []*Policy{loadString(f, seedYAML), hash} {
		plan, err := Compile(p, newMemData(testWorld), &Options{Now: testNow, Backends: []Capabilities{Splitter}})
		if err != nil {
			f.Fatal(err)
		}
		plans = append(plans, plan)
	}
	// The unspecified entry points: :: has the invalid address's words.
	plans = append(plans, &Plan{Rules: []Rule{
		{Name: "any6", Family: 6, DstAddr: netip.IPv6Unspecified(), DstPort: 25, Target: "a", To: netip.MustParseAddrPort("[2001:db8:10::1]:25")},
		{Name: "any4", Family: 4, DstAddr: netip.IPv4Unspecified(), DstPort: 25, Target: "b", To: netip.MustParseAddrPort("10.0.0.2:25")},
	}})
	var routers []*Router
	for _, p := range plans {
		rt, err := p.Router()
		if err != nil {
			f.Fatal(err)
		}
		routers = append(routers, rt)
	}
	for _, c := range []struct {
		src, dst string
		port     uint16
	}{
		{"192.0.2.7", "203.0.113.1", 25},
		{"::ffff:192.0.2.7", "::ffff:203.0.113.2", 25},
		{"2001:db8:99::1", "2001:db8::1", 25},
		{"2a00::1", "2001:db8::2", 587},
		{"fe80::1", "2001:db8::1", 25},
		{"2001:db8:99::1", "::", 25},
		{"192.0.2.7", "0.0.0.0", 25},
	} {
		f.Add(netip.MustParseAddr(c.src).AsSlice(), "", netip.MustParseAddr(c.dst).AsSlice(), "eth0", c.port)
	}
	f.Add(netip.MustParseAddr("2001:db8:99::1").AsSlice(), "", []byte{}, "", uint16(25)) // invalid destination

	f.Fuzz(func(t *testing.T, sb []byte, sz string, db []byte, dz string, port uint16) {
		src, dst := fuzzAddr(sb, sz), fuzzAddr(db, dz)
		forEachRead(t, func(read string) {
			for i, p := range plans {
				want := p.Route(src, dst, port)
				if got := routers[i].Route(src, dst, port); got != want {
					t.Errorf("plan %d, %s: Router.Route(%v, %v, %d) = %v, plan %v", i, read, src, dst, port, got, want)
				}
				if got := routers[i].Entry(dst, port).Route(src); got != want {
					t.Errorf("plan %d, %s: Entry(%v, %d).Route(%v) = %v, plan %v", i, read, dst, port, src, got, want)
				}
			}
		})
	})
}

// fuzzAddr is the address of the fuzzer's bytes b (invalid unless 4 or
// 16 of them), with the zone z if it is IPv6.
func fuzzAddr(b []byte, z string) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	if a.Is6() && z != "" {
		a = a.WithZone(z)
	}
	return a
}
