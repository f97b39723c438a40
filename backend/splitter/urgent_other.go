//go:build !linux

package splitter

import "net"

// atUrgentMark is for Linux's splice, which stops at urgent data's mark;
// elsewhere io.Copy reads, and a read passes the mark.
func atUrgentMark(*net.TCPConn) bool { return false }
