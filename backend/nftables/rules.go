package nftables

import (
	"bytes"
	"encoding/binary"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// ruleExprs is the bytecode nft 1.0 generates for the rule's text (see
// Render) in an inet table, expression for expression, so that the two
// routes to the kernel give identical rules:
//
//	meta nfproto ipv4|ipv6                  (implied by ip/ip6 daddr)
//	ip daddr D
//	meta l4proto tcp                        (implied by tcp dport)
//	tcp dport P
//	ip saddr A-B                            cmp gte A, cmp lte B; or cmp eq A when A = B
//	ip saddr [!=] @set
//	counter
//	dnat ip to T:port
func ruleExprs(kr krule) []expr.Any {
	r := kr.r
	v6 := r.Family == 6
	nfproto, saddrOff, daddrOff, alen, natFam := byte(unix.NFPROTO_IPV4), uint32(12), uint32(16), uint32(4), uint32(unix.NFPROTO_IPV4)
	if v6 {
		nfproto, saddrOff, daddrOff, alen, natFam = unix.NFPROTO_IPV6, 8, 24, 16, unix.NFPROTO_IPV6
	}
	loadSaddr := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: saddrOff, Len: alen}
	es := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddrOff, Len: alen},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addrBytes(r.DstAddr)},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(r.DstPort)},
	}
	if r.Src.IsValid() {
		es = append(es, loadSaddr)
		if r.Src.From() == r.Src.To() {
			es = append(es, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addrBytes(r.Src.From())})
		} else {
			es = append(es,
				&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: addrBytes(r.Src.From())},
				&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: addrBytes(r.Src.To())})
		}
	}
	if kr.set != "" {
		p := *loadSaddr
		es = append(es, &p, &expr.Lookup{SourceRegister: 1, SetName: kr.set, Invert: r.SrcSetNot})
	}
	return append(es,
		&expr.Counter{},
		&expr.Immediate{Register: 1, Data: addrBytes(r.To.Addr())},
		&expr.Immediate{Register: 2, Data: port(r.To.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: natFam, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}

func port(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

func ruleUserData(kr krule) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, kr.comment)
}

// ruleKey is a rule's bytecode and user data in a comparable form: the
// marshalled expressions with counter values, set ids and defaults cleared,
// so that a
// rule read back from the kernel equals the rule this package would send.
func ruleKey(es []expr.Any, udata []byte) ([]byte, error) {
	var b bytes.Buffer
	for _, e := range es {
		switch x := e.(type) {
		case *expr.Counter:
			e = &expr.Counter{}
		case *expr.Lookup:
			c := *x
			c.SetID = 0
			e = &c
		case *expr.NAT:
			// The kernel reports an unset maximum as the minimum.
			c := *x
			if c.RegAddrMax == c.RegAddrMin {
				c.RegAddrMax = 0
			}
			if c.RegProtoMax == c.RegProtoMin {
				c.RegProtoMax = 0
			}
			e = &c
		}
		m, err := expr.Marshal(byte(nftables.TableFamilyINet), e)
		if err != nil {
			return nil, err
		}
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m))))
		b.Write(m)
	}
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(udata))))
	b.Write(udata)
	return b.Bytes(), nil
}
