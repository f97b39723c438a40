//go:build linux

package splitter

import (
	"net/netip"
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
	r, err := sys6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if err != nil {
		return -1, netip.AddrPort{}, err
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
// pipes are non-blocking), so they may skip the runtime's system-call
// bookkeeping (entersyscall, which also wakes sysmon): see rawSyscalls.

// rawSyscalls selects RawSyscall for the loop's non-blocking calls. The
// loop's goroutine is the only one doing the work, so a P handed off for
// a call that returns in microseconds is only overhead: sysmon woken, the
// P retaken, and taken back. Measured (benchmarks/README.md, "## splitter",
// this session): 0.75 against 0.83 of the goroutine engine's CPU per
// connection in three interleaved pairs of runs. epoll_wait, which blocks,
// stays a normal system call.
const rawSyscalls = true

func sys6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	var r uintptr
	var e unix.Errno
	if rawSyscalls {
		r, _, e = unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	} else {
		r, _, e = unix.Syscall6(trap, a1, a2, a3, a4, a5, a6)
	}
	if e != 0 {
		return r, e
	}
	return r, nil
}

func bufPtr(p []byte) uintptr {
	if len(p) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&p[0]))
}

func sysRead(fd int, p []byte) (int, error) {
	n, err := sys6(unix.SYS_READ, uintptr(fd), bufPtr(p), uintptr(len(p)), 0, 0, 0)
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// sysSend writes without raising SIGPIPE on a connection the peer reset.
func sysSend(fd int, p []byte) (int, error) {
	n, err := sys6(unix.SYS_SENDTO, uintptr(fd), bufPtr(p), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

func sysSplice(in, out, n int) (int, error) {
	r, err := sys6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), spliceFlags)
	if err != nil {
		return 0, err
	}
	return int(r), nil
}

func sysClose(fd int) { sys6(unix.SYS_CLOSE, uintptr(fd), 0, 0, 0, 0, 0) }

func sysShutdownWrite(fd int) error {
	_, err := sys6(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0, 0, 0, 0)
	return err
}

func sysSocket(family int) (int, error) {
	fd, err := sys6(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0, 0, 0)
	return int(fd), err
}

func sysSetsockoptInt(fd, level, opt, v int) error {
	x := int32(v)
	_, err := sys6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&x)), 4, 0)
	return err
}

func sysSoError(fd int) error {
	var x int32
	n := uint32(4)
	if _, err := sys6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&x)), uintptr(unsafe.Pointer(&n)), 0); err != nil {
		return err
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
	port := (*[2]byte)(unsafe.Pointer(new(uint16)))
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
		port = (*[2]byte)(unsafe.Pointer(&sa.Port))
		n = unix.SizeofSockaddrInet6
	}
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	_, err := sys6(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), n, 0, 0, 0)
	return err
}

func sysEpollAdd(epfd, fd int, ev *unix.EpollEvent) error {
	_, err := sys6(unix.SYS_EPOLL_CTL, uintptr(epfd), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return err
}

// epollPoll returns the events ready now, without waiting.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, err := sys6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return int(n), err
}
