package routeros

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// Names says how managed objects are named on the router. The zero value
// uses the defaults.
//
// Every address-list entry the library adds carries the comment Tag, and
// every NAT rule the comment "Tag name" (or "Tag name: plan comment"); only
// such objects are ever changed or removed, so entries and rules a
// technician adds by hand survive every sync. A plan set S of family F is
// loaded into lists named ListPrefix+S+".v4."+G (or ".v6."), where the
// generation G changes whenever the content does: rules are repointed to a
// fully loaded generation in one command (blue/green).
type Names struct {
	Tag        string // default "geosteer"; [A-Za-z0-9_-]+
	ListPrefix string // default "geosteer-"; [A-Za-z0-9_-]*
}

const (
	defaultTag    = "geosteer"
	defaultPrefix = "geosteer-"
)

func (n Names) withDefaults() (Names, error) {
	if n.Tag == "" {
		n.Tag = defaultTag
	}
	if n.ListPrefix == "" {
		n.ListPrefix = defaultPrefix
	}
	// Both appear in the regular expressions of scripts: keep them plain.
	if !plain(n.Tag) || !plain(n.ListPrefix) {
		return n, fmt.Errorf("routeros: tag %q or list prefix %q: want [A-Za-z0-9_-]+", n.Tag, n.ListPrefix)
	}
	return n, nil
}

func plain(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// listKey identifies the lists of one plan set in one family.
type listKey struct {
	set string
	fam int // 4 or 6
}

// base is the list name without the generation.
func (n Names) base(k listKey) string {
	return fmt.Sprintf("%s%s.v%d", n.ListPrefix, k.set, k.fam)
}

func (n Names) list(k listKey, gen string) string { return n.base(k) + "." + gen }

// parseList splits a managed list name into its key and generation.
func (n Names) parseList(name string) (k listKey, gen string, ok bool) {
	rest, ok := strings.CutPrefix(name, n.ListPrefix)
	if !ok {
		return k, "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return k, "", false
	}
	rest, gen = rest[:i], rest[i+1:]
	switch {
	case strings.HasSuffix(rest, ".v4"):
		k.fam = 4
	case strings.HasSuffix(rest, ".v6"):
		k.fam = 6
	default:
		return k, "", false
	}
	k.set = rest[:len(rest)-3]
	return k, gen, k.set != "" && gen != ""
}

// ruleComment is the comment of a managed rule.
func (n Names) ruleComment(name, comment string) string {
	if comment == "" {
		return n.Tag + " " + name
	}
	return n.Tag + " " + name + ": " + comment
}

// ruleName returns the rule name of a managed rule's comment.
func (n Names) ruleName(comment string) (string, bool) {
	rest, ok := strings.CutPrefix(comment, n.Tag+" ")
	if !ok || rest == "" {
		return "", false
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return rest, rest != ""
}

// entryAddress is the address value of a list entry for r: the prefix when
// r is one (an IPv4 /32 as a bare address, as RouterOS prints it), else the
// IPv4 range "a-b", one entry where prefixes would need several. IPv6
// lists take no ranges; callers split those first.
func entryAddress(r netipx.IPRange) string {
	if p, ok := r.Prefix(); ok {
		if p.Addr().Is4() && p.Bits() == 32 {
			return p.Addr().String()
		}
		return p.String()
	}
	return r.From().String() + "-" + r.To().String()
}

// parseEntry reads an address value as a router prints it: an address, a
// prefix (host bits ignored) or a range. DNS names and garbage are !ok.
func parseEntry(s string) (netipx.IPRange, bool) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netipx.IPRange{}, false
		}
		return netipx.RangeOfPrefix(p.Masked()), true
	}
	if i := strings.IndexByte(s, '-'); i > 0 {
		lo, err1 := netip.ParseAddr(s[:i])
		hi, err2 := netip.ParseAddr(s[i+1:])
		r := netipx.IPRangeFrom(lo, hi)
		if err1 != nil || err2 != nil || !r.IsValid() {
			return netipx.IPRange{}, false
		}
		return r, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netipx.IPRange{}, false
	}
	return netipx.IPRangeFrom(a, a), true
}

// parseID reads a RouterOS "*HEX" id.
func parseID(s string) (uint64, bool) {
	h, ok := strings.CutPrefix(s, "*")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(h, 16, 64)
	return n, err == nil
}

func fmtID(id uint64) string { return "*" + strings.ToUpper(strconv.FormatUint(id, 16)) }

// joinIDs formats ids for a comma-id command.
func joinIDs(ids []uint64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(fmtID(id))
	}
	return b.String()
}
