package geo

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPaths are the files [FindDefault] looks for, in order: the
// MaxMind DB files geoipupdate and the distributions' packages install
// (GeoLite2 and GeoIP2, Country before City, and DB-IP's Lite edition) in
// the directories they install them to (/usr/share/GeoIP on Fedora and
// most packages, /var/lib/GeoIP on Debian's geoipupdate, /usr/local/share/GeoIP
// on the BSDs and Homebrew).
var DefaultPaths = func() []string {
	var ps []string
	for _, dir := range []string{"/usr/share/GeoIP", "/var/lib/GeoIP", "/usr/local/share/GeoIP"} {
		for _, name := range []string{
			"GeoLite2-Country.mmdb", "GeoIP2-Country.mmdb",
			"dbip-country-lite.mmdb",
			"GeoLite2-City.mmdb", "GeoIP2-City.mmdb",
		} {
			ps = append(ps, dir+"/"+name)
		}
	}
	return ps
}()

// FindDefault returns the first of [DefaultPaths] that is a regular file,
// for commands whose country database is optional on the command line.
//
// Failing that, and only when the working directory lies inside
// geosteer's own source tree (it or a parent holds geosteer's go.mod), it
// returns the bundled sample geo/testdata/sample.mmdb (a ~200 KiB cut,
// fine for trying things out), relative to the working directory, so that
// the examples run from a checkout without a database installed. An
// installed program never falls back to the sample.
//
// The caller should say which file it uses: the answer depends on the
// machine.
func FindDefault() (path string, ok bool) {
	for _, p := range DefaultPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return sample()
}

// sample finds geo/testdata/sample.mmdb from inside a geosteer checkout.
func sample() (string, bool) {
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for dir := wd; ; {
		if isGeosteerModule(filepath.Join(dir, "go.mod")) {
			p := filepath.Join(dir, "geo", "testdata", "sample.mmdb")
			if _, err := os.Stat(p); err != nil {
				return "", false
			}
			if rel, err := filepath.Rel(wd, p); err == nil {
				p = rel
			}
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// isGeosteerModule reports whether the go.mod file at path declares the
// module github.com/geosteer/geosteer (not a module nested in it, such as
// benchmarks/, nor a project that merely depends on it).
func isGeosteerModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == "github.com/geosteer/geosteer"
		}
	}
	return false
}
