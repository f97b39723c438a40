package routerostest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/geosteer/geosteer/internal/testenv"
)

// systemPython is Debian's interpreter, where python3-librouteros installs;
// a python3 earlier on PATH (pyenv) would not see the package.
const systemPython = "/usr/bin/python3"

// TestLibrouterosCrossCheck runs testdata/librouteros_check.py, written
// against librouteros' public API, to confirm the simulator is not merely
// agreeing with go-routeros' interpretation of the protocol.
func TestLibrouterosCrossCheck(t *testing.T) {
	if _, err := os.Stat(systemPython); err != nil {
		testenv.Skip(t, systemPython+" missing (Debian package python3)")
	}
	if out, err := exec.Command(systemPython, "-c", "import librouteros").CombinedOutput(); err != nil {
		testenv.Skip(t, "python module librouteros missing (Debian package python3-librouteros): "+strings.TrimSpace(string(out)))
	}
	srv := newServer(t, Options{Users: map[string]string{"admin": "secret"}})
	host, port, _ := net.SplitHostPort(srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, systemPython, "testdata/librouteros_check.py", host, port).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("librouteros check: %v\n%s", err, out)
	}
	if n := len(srv.AddressList("ip", "")); n != 1 {
		t.Errorf("%d entries left, want 1", n)
	}
}
