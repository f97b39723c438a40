package nftables

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/geosteer/geosteer/steer"
	"go4.org/netipx"
)

// DefaultTable is the name of the table the backend owns when
// [Backend.Table] is empty.
const DefaultTable = "geosteer"

// chainName is the one chain of the table.
const chainName = "prerouting"

// maxComment is nft's limit on comments (NFT_USERDATA_MAXLEN is 256, the
// nft parser allows 128 bytes); longer comments are cut so that the
// rendered script and the netlink apply agree.
const maxComment = 128

// A kset is one kernel set as the plan wants it: one family of a plan set.
type kset struct {
	name    string // <plan set>_v4 or _v6
	v6      bool
	comment string
	ranges  []netipx.IPRange // canonical: sorted, disjoint, non-adjacent
}

// A krule is one rule of the chain as the plan wants it.
type krule struct {
	r       steer.Rule
	set     string // kernel set name for r.SrcSet, or ""
	comment string
}

// A layout is the whole table as the plan wants it.
type layout struct {
	sets  []kset
	rules []krule
}

// setName is the kernel set of one family of a plan set.
func setName(planSet string, v6 bool) string {
	if v6 {
		return planSet + "_v6"
	}
	return planSet + "_v4"
}

// layoutOf derives the table's content from a valid plan.
func layoutOf(p *steer.Plan) *layout {
	l := &layout{}
	for _, s := range p.Sets {
		for _, v6 := range []bool{false, true} {
			part := s.Addrs.IPv4()
			if v6 {
				part = s.Addrs.IPv6()
			}
			l.sets = append(l.sets, kset{
				name:    setName(s.Name, v6),
				v6:      v6,
				comment: cleanComment(s.Comment),
				ranges:  part.Ranges(),
			})
		}
	}
	for _, r := range p.Rules {
		kr := krule{r: r, comment: r.Name}
		if r.Comment != "" {
			kr.comment += ": " + r.Comment
		}
		kr.comment = cleanComment(kr.comment)
		if r.SrcSet != "" {
			kr.set = setName(r.SrcSet, r.Family == 6)
		}
		l.rules = append(l.rules, kr)
	}
	return l
}

func (l *layout) numRanges() int {
	n := 0
	for _, s := range l.sets {
		n += len(s.ranges)
	}
	return n
}

// cleanComment makes s safe inside an nft double-quoted string (which has
// no escapes) and cuts it to maxComment bytes on a character boundary.
func cleanComment(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return '\''
		case r < ' ' || r == 0x7f || r == utf8.RuneError:
			return ' '
		}
		return r
	}, s)
	if len(s) > maxComment {
		cut := maxComment
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// addrBytes is an address in the kernel's key layout: 4 or 16 bytes,
// network order.
func addrBytes(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}
