package nftables

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/internal/testenv"
	"golang.org/x/sys/unix"
)

// A netNS is a network namespace made by a test with ip netns and removed
// when the test ends.
type netNS struct {
	name string
	fd   int // open /run/netns/name
}

// nsPrefix names the namespaces of one test process uniquely.
var nsPrefix = func() string {
	var b [4]byte
	rand.Read(b[:])
	return "gs-" + hex.EncodeToString(b[:])
}()

var nsSeq int

// newNS creates a namespace with loopback up.
func newNS(t testing.TB, role string) *netNS {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip", "iproute2")
	nsSeq++
	name := fmt.Sprintf("%s-%d%s", nsPrefix, nsSeq, role)
	run(t, "ip", "netns", "add", name)
	n := &netNS{name: name, fd: -1}
	t.Cleanup(func() {
		if n.fd >= 0 {
			unix.Close(n.fd)
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	n.fd = fd
	n.ip(t, "link", "set", "lo", "up")
	return n
}

// ip runs ip -n NAME args.
func (n *netNS) ip(t testing.TB, args ...string) {
	t.Helper()
	run(t, "ip", append([]string{"-n", n.name}, args...)...)
}

// exec runs a command inside the namespace and returns its standard output.
func (n *netNS) exec(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s in %s: %v: %s", strings.Join(args, " "), n.name, err, errb.String())
	}
	return out.String()
}

// do runs f on an OS thread switched into the namespace: sockets f opens
// belong to it for their whole life.
func (n *netNS) do(f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", n.name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with the goroutine rather than
		// run other goroutines in the wrong namespace.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
