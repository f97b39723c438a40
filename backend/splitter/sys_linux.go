//go:build linux

package splitter

import (
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// accept4 accepts a connection, non-blocking and close-on-exec, and
// returns the peer's address from the call itself. unix.Accept4 would
// also ask the socket's protocol (a getsockopt per connection, for L2TP
// sockets) and allocate the address.
func accept4(fd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(r), rawAddrPort(&rsa), nil
}

// rawAddrPort converts an AF_INET or AF_INET6 socket address (port in
// network byte order).
func rawAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// System calls of the event loop. None of them blocks (the sockets and
// pipes are non-blocking), so they skip the runtime's system-call
// bookkeeping (entersyscall, which also wakes sysmon): the loop's
// goroutine is the only one doing the work, so a P handed off for a call
// that returns in microseconds is only overhead — sysmon woken, the P
// retaken, and taken back. Measured (benchmarks/README.md, "## splitter",
// session 3): 0.75 against 0.83 of the goroutine engine's CPU per
// connection in three interleaved pairs of runs. epoll_wait, which blocks,
// is not among them.
//
// Each wrapper calls unix.RawSyscall6 (assembly) itself, with every
// uintptr(unsafe.Pointer(...)) conversion written in that call's argument
// list: only there is the object kept alive and in place. Passed through
// an ordinary Go function first, a pointer to a local goes stale when that
// function's prologue grows (and so moves) the stack
// (TestReviewSyscallPointerAcrossStackGrowth).

func errnoErr(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

func sysRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sysSend writes without raising SIGPIPE on a connection the peer reset.
func sysSend(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func sysSplice(in, out, n int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), spliceFlags)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func sysClose(fd int) { unix.RawSyscall6(unix.SYS_CLOSE, uintptr(fd), 0, 0, 0, 0, 0) }

func sysShutdownWrite(fd int) error {
	_, _, e := unix.RawSyscall6(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0, 0, 0, 0)
	return errnoErr(e)
}

func sysSocket(family int) (int, error) {
	fd, _, e := unix.RawSyscall6(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

func sysSetsockoptInt(fd, level, opt, v int) error {
	x := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&x)), 4, 0)
	return errnoErr(e)
}

func sysSoError(fd int) error {
	var x int32
	n := uint32(4)
	if _, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&x)), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		return e
	}
	if x != 0 {
		return unix.Errno(x)
	}
	return nil
}

// sysConnect starts connecting to ap: nil or EINPROGRESS on success.
func sysConnect(fd int, ap netip.AddrPort) error {
	var rsa unix.RawSockaddrAny
	var n uintptr
	var port *[2]byte
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		sa.Family = unix.AF_INET
		sa.Addr = a.Unmap().As4()
		port = (*[2]byte)(unsafe.Pointer(&sa.Port))
		n = unix.SizeofSockaddrInet4
	} else {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		sa.Family = unix.AF_INET6
		sa.Addr = a.As16()
		sa.Scope_id = zoneIndex(a.Zone())
		port = (*[2]byte)(unsafe.Pointer(&sa.Port))
		n = unix.SizeofSockaddrInet6
	}
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	_, _, e := unix.RawSyscall6(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), n, 0, 0, 0)
	return errnoErr(e)
}

// zoneIndex is the interface index an IPv6 zone names (a link-local
// target such as fe80::1%eth0), as net resolves it: a name, or a number.
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	return 0
}

func sysEpollAdd(epfd, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}

// epollPoll returns the events ready now, without waiting.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
