package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// A batch is one nftables transaction encoded as the bytes of one sendmsg:
// a batch-begin message carrying the generation the transaction is based
// on, the messages, and a batch-end message.
//
// Table, chain, set and rule messages are marshalled by google/nftables:
// a Conn dialled with nltest hands them over at Flush instead of sending
// them. Element lists, nearly all of the bytes, are encoded here straight
// into the buffer, byte for byte as google/nftables would (see
// TestElemMessagesMatchLibrary), without its per-element allocations. The
// package sends the batch itself because google/nftables v0.3.0 cannot put
// NFNL_BATCH_GENID in the batch-begin message.
//
// The zero batch is empty; newBatch makes one ready to take messages.
type batch struct {
	buf  []byte // begin (patched by send), messages, end (added by send)
	seq  uint32
	acks int // messages that ask for an acknowledgement

	lib      *nftables.Conn
	captured []netlink.Message
}

// Netlink constants google/nftables and x/sys use under other names.
const (
	nlmsgHdrLen = 16
	beginLen    = nlmsgHdrLen + 4 + nlaHdr + 4 // nfgenmsg, NFNL_BATCH_GENID
	endLen      = nlmsgHdrLen + 4
)

func newBatch(sizeHint int) *batch {
	b := &batch{buf: make([]byte, beginLen, beginLen+sizeHint+endLen)}
	lib, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if req == nil {
			// Flush reads one acknowledgement per message.
			return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4)}}, nil
		}
		if len(req) >= 2 { // drop google/nftables' batch begin and end
			b.captured = append(b.captured, req[1:len(req)-1]...)
		}
		return nil, nil
	}))
	if err != nil { // New fails only for lasting connections
		panic(err)
	}
	b.lib = lib
	return b
}

// drain moves the messages queued on b.lib into the buffer, in order.
func (b *batch) drain() error {
	if err := b.lib.Flush(); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, m := range b.captured {
		b.put(m.Header.Type, m.Header.Flags, m.Data)
	}
	b.captured = b.captured[:0]
	return nil
}

// put appends one message.
func (b *batch) put(typ netlink.HeaderType, flags netlink.HeaderFlags, data []byte) {
	b.buf = b.header(b.buf, nlmsgHdrLen+len(data), typ, flags)
	b.buf = append(b.buf, data...)
	for len(b.buf)%4 != 0 {
		b.buf = append(b.buf, 0)
	}
}

// header appends the header of the next message, of n bytes.
func (b *batch) header(dst []byte, n int, typ netlink.HeaderType, flags netlink.HeaderFlags) []byte {
	b.seq++
	if flags&netlink.Acknowledge != 0 {
		b.acks++
	}
	return appendHeader(dst, n, typ, flags, b.seq)
}

func appendHeader(dst []byte, n int, typ netlink.HeaderType, flags netlink.HeaderFlags, seq uint32) []byte {
	dst = binary.NativeEndian.AppendUint32(dst, uint32(n))
	dst = binary.NativeEndian.AppendUint16(dst, uint16(typ))
	dst = binary.NativeEndian.AppendUint16(dst, uint16(flags))
	dst = binary.NativeEndian.AppendUint32(dst, seq)
	return binary.NativeEndian.AppendUint32(dst, 0) // the kernel fills in the port id
}

// msgs is the number of messages between begin and end.
func (b *batch) msgs() int { return int(b.seq) }

// size is the number of bytes send sends.
func (b *batch) size() int { return len(b.buf) + endLen }

// putElems appends the elements of rs (after a leading zero end element if
// zeroFirst) to set s as NEWSETELEM (add) or DELSETELEM messages, each
// element list under 64 KiB and no range split between two messages.
func (b *batch) putElems(table, set string, setID uint32, v6 bool, rs []netipx.IPRange, zeroFirst, add bool) {
	typ := netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELSETELEM)
	if add {
		typ = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM)
	}
	klen := keyLen(v6)
	var key [16]byte
	for len(rs) > 0 || zeroFirst {
		start := len(b.buf)
		b.buf = b.header(b.buf, 0, typ, netlink.Request|netlink.Acknowledge|netlink.Create)
		b.buf = append(b.buf, byte(nftables.TableFamilyINet), unix.NFNETLINK_V0, 0, 0)
		b.buf = appendAttr(b.buf, unix.NFTA_SET_ELEM_LIST_SET, cstr(set)...)
		b.buf = appendAttr(b.buf, unix.NFTA_SET_ELEM_LIST_SET_ID, be32(setID)...)
		b.buf = appendAttr(b.buf, unix.NFTA_SET_ELEM_LIST_TABLE, cstr(table)...)
		list := len(b.buf)
		b.buf = appendAttr(b.buf, unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED)
		idx := uint16(0)
		elem := func(k []byte, end bool) {
			idx++
			at := len(b.buf)
			b.buf = appendAttr(b.buf, idx|unix.NLA_F_NESTED)
			if end {
				// NLA_F_NESTED on a u32, as google/nftables sends it; the
				// kernel masks the flag.
				b.buf = appendAttr(b.buf, unix.NFTA_SET_ELEM_FLAGS|unix.NLA_F_NESTED, 0, 0, 0, unix.NFT_SET_ELEM_INTERVAL_END)
			}
			b.buf = appendAttr(b.buf, unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED)
			b.buf = appendAttr(b.buf, unix.NFTA_DATA_VALUE, k...)
			binary.NativeEndian.PutUint16(b.buf[len(b.buf)-klen-2*nlaHdr:], uint16(2*nlaHdr+klen))
			binary.NativeEndian.PutUint16(b.buf[at:], uint16(len(b.buf)-at))
		}
		if zeroFirst {
			elem(key[:klen], true)
			zeroFirst = false
		}
		for len(rs) > 0 {
			r := rs[0]
			n := rangeSize(r, klen)
			if len(b.buf)-list+n > maxElemList && idx > 0 {
				break
			}
			elem(putKey(key[:klen], r.From()), false)
			if e := r.To().Next(); e.IsValid() {
				elem(putKey(key[:klen], e), true)
			}
			rs = rs[1:]
		}
		binary.NativeEndian.PutUint16(b.buf[list:], uint16(len(b.buf)-list))
		binary.NativeEndian.PutUint32(b.buf[start:], uint32(len(b.buf)-start))
	}
}

// rangeSize is the encoded size of a range's elements.
func rangeSize(r netipx.IPRange, klen int) int {
	n := 3*nlaHdr + klen
	if r.To().Next().IsValid() {
		n += 4*nlaHdr + klen + 4
	}
	return n
}

// appendAttr appends a netlink attribute holding data, padded; for a
// nested attribute, the caller appends the content and fixes the length.
func appendAttr(dst []byte, typ uint16, data ...byte) []byte {
	dst = binary.NativeEndian.AppendUint16(dst, uint16(nlaHdr+len(data)))
	dst = binary.NativeEndian.AppendUint16(dst, typ)
	dst = append(dst, data...)
	for len(dst)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// putKey writes a's bytes, in network order, to key (4 or 16 bytes).
func putKey(key []byte, a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		copy(key, b[:])
	} else {
		b := a.As16()
		copy(key, b[:])
	}
	return key
}

func cstr(s string) []byte { return append([]byte(s), 0) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// errGenChanged is the kernel refusing a batch because the ruleset
// generation is no longer the one the batch names.
var errGenChanged = errors.New("ruleset changed since it was read")

// send sends the batch as one transaction that the kernel commits only if
// the ruleset is still at generation gen (0: whatever it is), and waits for
// every acknowledgement. A nil error means committed; errGenChanged, or any
// other error from the kernel, means nothing changed.
func (b *batch) send(c *netlink.Conn, gen uint32) error {
	begin := appendHeader(b.buf[:0], beginLen, unix.NFNL_MSG_BATCH_BEGIN, netlink.Request, 0)
	begin = append(begin, unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES)
	appendAttr(begin, unix.NFNL_BATCH_GENID, be32(gen)...) // in place: b.buf starts with beginLen bytes for it
	all := appendHeader(b.buf, endLen, unix.NFNL_MSG_BATCH_END, netlink.Request, b.seq+1)
	all = append(all, unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES)

	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgN(int(fd), all, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
		return serr != unix.EAGAIN
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("sending %d bytes: %w", len(all), err)
	}

	// The kernel handles the batch inside sendmsg and queues its answers:
	// one per message that asked (0 or an error), after an error for the
	// whole batch if the commit itself failed, or only ERESTART if the
	// generation differs. Any error means the transaction was aborted.
	return readAnswers(rc, b.acks)
}

// readAnswers reads want acknowledgements (NLMSG_ERROR messages), several
// of which may share a datagram.
func readAnswers(rc syscall.RawConn, want int) error {
	buf := make([]byte, 256<<10)
	var errs error
	for got := 0; got < want; {
		var n, rflags int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rflags, _, rerr = unix.Recvmsg(int(fd), buf, nil, 0)
			return rerr != unix.EAGAIN
		})
		if err = errors.Join(err, rerr); err == nil && rflags&unix.MSG_TRUNC != 0 {
			err = errors.New("answer truncated")
		}
		if err != nil {
			return &answerLostError{errors.Join(errs, err)}
		}
		ms, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return &answerLostError{errors.Join(errs, err)}
		}
		for _, m := range ms {
			if m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			got++
			if err := answerError(m); errors.Is(err, unix.ERESTART) {
				return errGenChanged
			} else if err != nil {
				errs = errors.Join(errs, err)
			}
		}
	}
	return errs
}

// A kernelError is the kernel refusing one message of a batch.
type kernelError struct {
	seq   uint32 // the message's position in the batch, from 1
	errno unix.Errno
	msg   string // the extended acknowledgement's text, if any
}

func (e *kernelError) Error() string {
	s := fmt.Sprintf("message %d: %v", e.seq, e.errno)
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

func (e *kernelError) Unwrap() error { return e.errno }

// answerError decodes an NLMSG_ERROR message: nil for an acknowledgement,
// a *kernelError otherwise.
func answerError(m syscall.NetlinkMessage) error {
	if len(m.Data) < 4+nlmsgHdrLen {
		return errors.New("short netlink error message")
	}
	code := int32(binary.NativeEndian.Uint32(m.Data))
	if code == 0 {
		return nil
	}
	e := &kernelError{seq: binary.NativeEndian.Uint32(m.Data[4+8:]), errno: unix.Errno(-code)}
	if m.Header.Flags&unix.NLM_F_ACK_TLVS != 0 {
		off := 4 + nlmsgHdrLen
		if m.Header.Flags&unix.NLM_F_CAPPED == 0 {
			off = 4 + int(binary.NativeEndian.Uint32(m.Data[4:]))
			off = (off + 3) &^ 3
		}
		if off <= len(m.Data) {
			if ad, err := netlink.NewAttributeDecoder(m.Data[off:]); err == nil {
				for ad.Next() {
					if ad.Type() == unix.NLMSGERR_ATTR_MSG {
						e.msg = ad.String()
					}
				}
			}
		}
	}
	return e
}

// An answerLostError is a transaction whose outcome is unknown: the socket
// failed before all of the kernel's answers were read.
type answerLostError struct{ err error }

func (e *answerLostError) Error() string {
	return fmt.Sprintf("reading the kernel's answers (the transaction may or may not have committed): %v", e.err)
}

func (e *answerLostError) Unwrap() error { return e.err }
