package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The ruleset generation: the kernel counts committed nftables
// transactions per network namespace (nft_net->base_seq, incremented once
// by every commit that changes anything, skipping zero). An unchanged
// generation means no transaction committed in between, in any table: the
// kernel's ruleset is exactly as it was.

// getGen asks the kernel for the current generation (NFT_MSG_GETGEN, which
// google/nftables v0.3.0 does not expose).
func getGen(c *netlink.Conn) (uint32, error) {
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("nftables: reading the ruleset generation: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN) || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("nftables: ruleset generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), ad.Err()
			}
		}
	}
	return 0, errors.New("nftables: ruleset generation: no NFTA_GEN_ID in the kernel's answer")
}

// nextGen is the generation after one commit.
func nextGen(g uint32) uint32 {
	if g++; g == 0 {
		return 1
	}
	return g
}

// netnsCookie identifies the network namespace of the socket for this
// boot (SO_NETNS_COOKIE, Linux 5.14), or returns 0 when the kernel cannot
// tell: generations of different namespaces must never be compared.
func netnsCookie(c *netlink.Conn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var cookie uint64
	rc.Control(func(fd uintptr) {
		v, err := unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		if err == nil {
			cookie = v
		}
	})
	return cookie
}
