package nftables

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"

	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// Render writes the plan as an nft -f script that replaces the backend's
// table atomically: loading it (nft -f FILE, one transaction) gives the
// kernel the same table, set elements and rule bytecode as Apply.
func (b *Backend) Render(w io.Writer, p *steer.Plan) error {
	if err := checkPlan(p); err != nil {
		return err
	}
	l := layoutOf(p)
	t := b.table()
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "#!/usr/sbin/nft -f\n# geosteer: %d sets (%d ranges), %d rules. Replaces table inet %s atomically.\n", len(l.sets), l.numRanges(), len(l.rules), t)
	// Declaring the table first makes the delete succeed when it is absent.
	fmt.Fprintf(bw, "table inet %s\ndelete table inet %s\n\ntable inet %s {\n", t, t, t)
	var buf []byte
	for _, s := range l.sets {
		typ := "ipv4_addr"
		if s.v6 {
			typ = "ipv6_addr"
		}
		fmt.Fprintf(bw, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", s.name, typ)
		if s.comment != "" {
			fmt.Fprintf(bw, "\t\tcomment \"%s\"\n", s.comment)
		}
		if len(s.ranges) > 0 {
			bw.WriteString("\t\telements = {\n")
			for i, r := range s.ranges {
				buf = append(buf[:0], "\t\t\t"...)
				buf = appendRange(buf, r)
				if i < len(s.ranges)-1 {
					buf = append(buf, ',')
				}
				buf = append(buf, '\n')
				bw.Write(buf)
			}
			bw.WriteString("\t\t}\n")
		}
		bw.WriteString("\t}\n\n")
	}
	fmt.Fprintf(bw, "\tchain %s {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n", chainName)
	for _, kr := range l.rules {
		bw.WriteString("\t\t")
		bw.WriteString(ruleText(kr))
		bw.WriteString("\n")
	}
	bw.WriteString("\t}\n}\n")
	return bw.Flush()
}

// appendRange writes a range as nft reads it: an address, a prefix, or a-b.
func appendRange(b []byte, r netipx.IPRange) []byte {
	if r.From() == r.To() {
		return r.From().AppendTo(b)
	}
	if p, ok := r.Prefix(); ok {
		return p.AppendTo(b)
	}
	b = r.From().AppendTo(b)
	b = append(b, '-')
	return r.To().AppendTo(b)
}

// ruleText is the nft text of a rule; ruleExprs is its bytecode.
func ruleText(kr krule) string {
	r := kr.r
	ip := "ip"
	if r.Family == 6 {
		ip = "ip6"
	}
	s := fmt.Sprintf("%s daddr %s tcp dport %d", ip, r.DstAddr, r.DstPort)
	if r.Src.IsValid() {
		// Always a range, never a prefix: nft compiles a-b to the same
		// two comparisons whatever the bounds.
		src := r.Src.From().String()
		if r.Src.From() != r.Src.To() {
			src += "-" + r.Src.To().String()
		}
		s += fmt.Sprintf(" %s saddr %s", ip, src)
	}
	if kr.set != "" {
		op := ""
		if r.SrcSetNot {
			op = "!= "
		}
		s += fmt.Sprintf(" %s saddr %s@%s", ip, op, kr.set)
	}
	return s + fmt.Sprintf(" counter dnat %s to %s comment \"%s\"", ip, nftAddrPort(r.To), kr.comment)
}

func nftAddrPort(ap netip.AddrPort) string {
	if ap.Addr().Is6() {
		return fmt.Sprintf("[%s]:%d", ap.Addr(), ap.Port())
	}
	return ap.String()
}
