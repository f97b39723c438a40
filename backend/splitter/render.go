package splitter

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"

	"github.com/geosteer/geosteer/steer"
)

// Render writes p as the splitter would enforce it with s's options, for
// people to review (the backend.Renderer contract): one block per entry
// point with the local address it is listened on, then its rules in order
// with their targets, tarpits and the sets' sizes.
func (s *Splitter) Render(w io.Writer, p *steer.Plan) error {
	return Render(w, p, s.opts)
}

// Render writes p as a splitter with options o would enforce it, without
// starting one.
func Render(w io.Writer, p *steer.Plan, o Options) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("splitter: %w", err)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# geosteer splitter: %d rules, %d sets\n", len(p.Rules), len(p.Sets))
	for _, set := range p.Sets {
		fmt.Fprintf(bw, "set %s: %d IPv4 + %d IPv6 ranges", set.Name, set.Addrs.IPv4().NumRanges(), set.Addrs.IPv6().NumRanges())
		if set.Comment != "" {
			fmt.Fprintf(bw, " # %s", set.Comment)
		}
		bw.WriteByte('\n')
	}
	proxy := "none"
	if o.ProxyProtocol > 0 {
		proxy = fmt.Sprintf("v%d", o.ProxyProtocol)
	}
	for _, ep := range EntryPoints(p) {
		local := ep
		if l, ok := o.Listen[ep]; ok {
			local = l
		}
		fmt.Fprintf(bw, "\nlisten %v", local)
		if local != ep {
			fmt.Fprintf(bw, " (entry point %v)", ep)
		}
		fmt.Fprintf(bw, ", PROXY header to targets: %s\n", proxy)
		for _, r := range p.Rules {
			if netip.AddrPortFrom(r.DstAddr, r.DstPort) != ep {
				continue
			}
			fmt.Fprintf(bw, "  %-20s", r.Name)
			var cond []string
			if r.Src.IsValid() {
				cond = append(cond, "src "+r.Src.String())
			}
			if r.SrcSet != "" {
				in := "in"
				if r.SrcSetNot {
					in = "not in"
				}
				cond = append(cond, "src "+in+" "+r.SrcSet)
			}
			if len(cond) == 0 {
				cond = append(cond, "any src")
			}
			for i, c := range cond {
				if i > 0 {
					bw.WriteString(" and ")
				}
				bw.WriteString(c)
			}
			fmt.Fprintf(bw, " -> %s %v", r.Target, r.To)
			if d := o.Tarpit[r.Target]; d > 0 {
				fmt.Fprintf(bw, " (tarpit %v)", d)
			}
			if r.Comment != "" {
				fmt.Fprintf(bw, " # %s", r.Comment)
			}
			bw.WriteByte('\n')
		}
		bw.WriteString("  (no match: 421)\n")
	}
	return bw.Flush()
}
