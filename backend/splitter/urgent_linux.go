//go:build linux

package splitter

import (
	"net"

	"golang.org/x/sys/unix"
)

// atUrgentMark reports whether c's next byte is TCP urgent data's mark,
// where splice stops short of the end of the stream (SIOCATMARK).
func atUrgentMark(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	at := false
	rc.Control(func(fd uintptr) {
		v, err := unix.IoctlGetInt(int(fd), unix.SIOCATMARK)
		at = err == nil && v != 0
	})
	return at
}
