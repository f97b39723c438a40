package main

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetns runs f on an OS thread that has joined the network namespace ns
// (an open /run/netns/NAME), then puts the thread back. A socket belongs
// to the namespace it was created in, so a connection f dials stays in ns
// and can be used from any goroutine afterwards; f must not start
// goroutines that create sockets. The pattern is
// github.com/vishvananda/netns's (lock the thread, save its namespace,
// setns, work, setns back), in a goroutine of its own so that a thread
// that cannot be put back is never reused: its goroutine exits still
// locked, and the runtime ends the thread with it.
func inNetns(ns *os.File, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns.Name(), err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", ns.Name(), err)
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
