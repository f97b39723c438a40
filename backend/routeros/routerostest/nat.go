package routerostest

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// natRule is one NAT rule. Properties are kept as strings, as RouterOS
// shows them; validation happens on add and set.
type natRule struct {
	id       uint64
	props    map[string]string
	disabled bool
}

// natMenu is /ip/firewall/nat or /ipv6/firewall/nat. Rules are one global
// order across chains, as in RouterOS; rule tables are small, so a slice with
// O(n) insertion is the right structure.
type natMenu struct {
	v6     bool
	nextID uint64
	rules  []*natRule
}

func newNATMenu(v6 bool) *natMenu { return &natMenu{v6: v6, nextID: 1} }

// natFields lists the properties the simulator accepts, in print order.
// Anything else is refused as an unknown parameter.
var natFields = []string{
	"chain", "action", "to-addresses", "to-ports", "protocol",
	"src-address", "dst-address", "src-port", "dst-port", "port",
	"src-address-list", "dst-address-list",
	"in-interface", "out-interface", "in-interface-list", "out-interface-list",
	"per-connection-classifier", "connection-state", "connection-mark",
	"connection-type", "packet-mark", "routing-mark", "jump-target",
	"log", "log-prefix", "comment",
}

var natFieldSet = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range natFields {
		m[f] = true
	}
	return m
}()

var natActions = map[string]bool{
	"accept": true, "add-dst-to-address-list": true, "add-src-to-address-list": true,
	"dst-nat": true, "endpoint-independent-nat": true, "jump": true, "log": true,
	"masquerade": true, "netmap": true, "passthrough": true, "redirect": true,
	"return": true, "same": true, "src-nat": true,
}

// portProtocols are the protocols RouterOS accepts ports with; the trap text
// lists them (reported by a tik4net user, issue danikf/tik4net#52).
var portProtocols = map[string]bool{"tcp": true, "udp": true, "udp-lite": true, "dccp": true, "sctp": true, "6": true, "17": true}

const trapPorts = "failure: ports can be specified if proto is tcp,udp,udp-lite,dccp,sctp"

func (r *natRule) item() item {
	it := item{{".id", fmtID(r.id)}}
	for _, f := range natFields {
		if f == "comment" || f == "log" || f == "log-prefix" {
			continue
		}
		if v, ok := r.props[f]; ok {
			it = append(it, prop{f, v})
		}
	}
	log := r.props["log"]
	if log == "" {
		log = "false"
	}
	it = append(it,
		prop{"log", log}, prop{"log-prefix", r.props["log-prefix"]},
		prop{"bytes", "0"}, prop{"packets", "0"},
		prop{"invalid", "false"}, prop{"dynamic", "false"},
		prop{"disabled", fmtBool(r.disabled)})
	if v, ok := r.props["comment"]; ok {
		it = append(it, prop{"comment", v})
	}
	return it
}

func (m *natMenu) index(id uint64) int {
	return slices.IndexFunc(m.rules, func(r *natRule) bool { return r.id == id })
}

// validate checks a rule's merged properties and normalises address values
// in place. It returns a trap message, or "".
func (m *natMenu) validate(p map[string]string) string {
	if p["chain"] == "" {
		// unconfirmed: the exact trap for a rule without chain.
		return "failure: chain not specified"
	}
	if a := p["action"]; !natActions[a] {
		return "input does not match any value of action"
	}
	for _, f := range []string{"src-address", "dst-address"} {
		if v, ok := p[f]; ok && v != "" {
			shown, _, _, _, ok := parseRuleAddress(v, m.v6)
			if !ok {
				// unconfirmed: RouterOS's wording for a bad address value.
				return "invalid value for argument " + f
			}
			p[f] = shown
		}
	}
	if v := p["to-addresses"]; v != "" {
		if _, neg, _, _, ok := parseRuleAddress(v, m.v6); !ok || neg {
			return "invalid value for argument to-addresses"
		}
	}
	for _, f := range []string{"src-port", "dst-port", "port", "to-ports"} {
		if v, ok := p[f]; ok && v != "" {
			if _, ok := parsePorts(v); !ok {
				return "invalid value for argument " + f
			}
			if f != "to-ports" && !portProtocols[strings.TrimPrefix(p["protocol"], "!")] {
				return trapPorts
			}
		}
	}
	if v, ok := p["per-connection-classifier"]; ok && v != "" && !validPCC(v) {
		// unconfirmed: RouterOS's wording for a bad classifier.
		return "invalid value for argument per-connection-classifier"
	}
	return ""
}

// portSpan is one inclusive port range.
type portSpan struct{ lo, hi uint16 }

// portList is a parsed port matcher: "25", "25,587", "1000-2000", "!25".
type portList struct {
	neg   bool
	spans []portSpan
}

func parsePorts(s string) (portList, bool) {
	var pl portList
	if strings.HasPrefix(s, "!") {
		pl.neg, s = true, s[1:]
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 16)
		h, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || h < l {
			return portList{}, false
		}
		pl.spans = append(pl.spans, portSpan{uint16(l), uint16(h)})
	}
	return pl, true
}

func (pl portList) match(p uint16) bool {
	in := false
	for _, s := range pl.spans {
		if p >= s.lo && p <= s.hi {
			in = true
			break
		}
	}
	return in != pl.neg
}

// validPCC checks [!]fields:Denominator/Remainder with Remainder <
// Denominator, as the RouterOS manual describes.
func validPCC(s string) bool {
	s = strings.TrimPrefix(s, "!")
	fields, nums, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	switch fields {
	case "src-address", "dst-address", "both-addresses", "src-port", "dst-port",
		"both-ports", "src-address-and-port", "dst-address-and-port", "both-addresses-and-ports":
	default:
		return false
	}
	d, r, ok := strings.Cut(nums, "/")
	if !ok {
		return false
	}
	den, err1 := strconv.ParseUint(d, 10, 32)
	rem, err2 := strconv.ParseUint(r, 10, 32)
	return err1 == nil && err2 == nil && den >= 1 && rem < den
}

// matchRuleAddr reports whether a matches a stored rule address value.
func matchRuleAddr(v string, a netip.Addr, v6 bool) bool {
	_, neg, lo, hi, ok := parseRuleAddress(v, v6)
	if !ok {
		return false
	}
	return inRange(a, lo, hi) != neg
}

// route evaluates the dstnat chain top to bottom; see Server.Route.
func (m *natMenu) route(lists *addrMenu, src, dst netip.Addr, port uint16) (netip.Addr, uint16, string, bool) {
	for _, r := range m.rules {
		p := r.props
		if r.disabled || p["chain"] != "dstnat" {
			continue
		}
		if v := p["protocol"]; v != "" {
			neg := strings.HasPrefix(v, "!")
			isTCP := strings.TrimPrefix(v, "!") == "tcp" || strings.TrimPrefix(v, "!") == "6"
			if isTCP == neg {
				continue
			}
		}
		if v := p["src-address"]; v != "" && !matchRuleAddr(v, src, m.v6) {
			continue
		}
		if v := p["dst-address"]; v != "" && !matchRuleAddr(v, dst, m.v6) {
			continue
		}
		if v := p["dst-port"]; v != "" {
			if pl, ok := parsePorts(v); !ok || !pl.match(port) {
				continue
			}
		}
		// The source port is unknown to Route, and the PCC hash is not
		// published: rules that depend on them never match here.
		if p["src-port"] != "" || p["port"] != "" || p["per-connection-classifier"] != "" {
			continue
		}
		if !matchList(lists, p["src-address-list"], src) || !matchList(lists, p["dst-address-list"], dst) {
			continue
		}
		switch p["action"] {
		case "log", "passthrough", "jump", "return",
			"add-src-to-address-list", "add-dst-to-address-list":
			// Non-terminal for this model (jump targets are not followed).
			continue
		case "dst-nat", "netmap":
			to, toPort := dst, port
			if v := p["to-addresses"]; v != "" {
				if _, _, lo, _, ok := parseRuleAddress(v, m.v6); ok {
					to = lo
				}
			}
			if v := p["to-ports"]; v != "" {
				if pl, ok := parsePorts(v); ok && len(pl.spans) > 0 {
					toPort = pl.spans[0].lo
				}
			}
			return to, toPort, fmtID(r.id), true
		default:
			return dst, port, fmtID(r.id), true
		}
	}
	return dst, port, "", false
}

func matchList(lists *addrMenu, v string, a netip.Addr) bool {
	if v == "" {
		return true
	}
	name := strings.TrimPrefix(v, "!")
	return lists.contains(name, a) != (name != v)
}
