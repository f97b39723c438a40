// Package testenv lets tests say what they need from the machine: the shared
// data beside the project, root, network namespaces, external programs.
//
// On a developer's laptop a missing need skips the test with a message that
// says why. In CI (the environment variable CI=true) the same miss fails the
// test, because CI is set up to provide everything and a silent skip there
// would hide a test that never ran.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InCI reports whether the tests run in CI, where every need must be met.
func InCI() bool { return os.Getenv("CI") == "true" }

// Skip skips the test with the reason, or fails it in CI.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI must run this test, but: %s", reason)
	}
	t.Skip(reason)
}

// SharedDir returns the shared data directory: $GEOSTEER_SHARED_DATA if set,
// otherwise the first shared/data found walking up from the working
// directory (the project sits beside shared/). It returns "" if none exists.
func SharedDir() string {
	if d := os.Getenv("GEOSTEER_SHARED_DATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		cand := filepath.Join(dir, "shared", "data")
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// SharedFile returns the path of name inside the shared data directory, or
// skips the test (fails it in CI) when the file is absent.
func SharedFile(t testing.TB, name string) string {
	t.Helper()
	dir := SharedDir()
	if dir == "" {
		Skip(t, "shared data directory ../shared/data not found (set GEOSTEER_SHARED_DATA)")
		return ""
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		Skip(t, "shared data file missing: "+p)
	}
	return p
}

// NeedRoot skips the test (fails it in CI) unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "test needs root (network namespaces, netlink)")
	}
}

// NeedCommand returns the path of an external program, or skips the test
// (fails it in CI) when it is not installed.
func NeedCommand(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, name+" not installed (Debian package "+pkg+")")
	}
	return p
}
