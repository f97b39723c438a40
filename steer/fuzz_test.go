package steer

import (
	"bytes"
	"math/rand/v2"
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
