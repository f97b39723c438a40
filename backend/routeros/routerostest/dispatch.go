package routerostest

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Trap messages. Those not marked unconfirmed come from MikroTik's API
// documentation or from real routers' output quoted in bug reports.
const (
	trapLogin     = "invalid user name or password (6)"
	trapDuplicate = "failure: already have such entry"
	trapNoSuch    = "no such item"    // unconfirmed: category, exact wording
	trapQuery     = "invalid query"   // unconfirmed
	trapNoCommand = "no such command" // unconfirmed: category
	trapNoPrefix  = "no such command prefix"
	trapUnknown   = "unknown parameter "               // unconfirmed: wording for an argument a menu lacks
	trapMissing   = "missing value(s) of argument(s) " // unconfirmed
)

// knownDirs are the directories the simulator has; everything else is an
// unknown path (a real router has many more).
var knownDirs = map[string]bool{"/ip": true, "/ip/firewall": true, "/ipv6": true, "/ipv6/firewall": true, "/system": true}

var knownMenus = map[string]bool{
	"/ip/firewall/address-list": true, "/ipv6/firewall/address-list": true,
	"/ip/firewall/nat": true, "/ipv6/firewall/nat": true, "/system/resource": true,
}

// dispatch runs one command with the router CPU (s.mu) held.
func (s *Server) dispatch(c *conn, cmd *Command, r *reply) {
	switch cmd.Word {
	case "/login":
		s.login(c, cmd, r)
		return
	case "/quit":
		r.fatal = "session terminated on request"
		return
	case "/cancel":
		s.cancel(c, cmd, r)
		return
	}
	i := strings.LastIndexByte(cmd.Word, '/')
	if !strings.HasPrefix(cmd.Word, "/") || i == 0 {
		r.trapDone(0, trapNoPrefix)
		return
	}
	menu, verb := cmd.Word[:i], cmd.Word[i+1:]
	switch menu {
	case "/ip/firewall/address-list":
		s.addrCmd(c, 0, menu, verb, cmd, r)
	case "/ipv6/firewall/address-list":
		s.addrCmd(c, 1, menu, verb, cmd, r)
	case "/ip/firewall/nat":
		s.natCmd(c, 0, menu, verb, cmd, r)
	case "/ipv6/firewall/nat":
		s.natCmd(c, 1, menu, verb, cmd, r)
	case "/system/resource":
		if verb == "print" || verb == "getall" {
			s.printItems(cmd, r, func(yield func(row) bool) { yield(s.resource()) })
			return
		}
		r.trapDone(0, trapNoCommand)
	default:
		s.unknownPath(cmd.Word, r)
	}
}

// unknownPath answers a command word outside the simulator's menus. For an
// unknown directory RouterOS sends two traps (seen in a v5-era transcript:
// "no such command or directory (x)" then "no such command prefix").
// unconfirmed: the same on RouterOS 7.
func (s *Server) unknownPath(word string, r *reply) {
	segs := strings.Split(strings.TrimPrefix(word, "/"), "/")
	path := ""
	for i, seg := range segs {
		path += "/" + seg
		if knownDirs[path] {
			continue
		}
		if i == len(segs)-1 && knownMenus[strings.TrimSuffix(path, "/"+seg)] {
			r.trapDone(0, trapNoCommand)
			return
		}
		r.trap(0, "no such command or directory ("+seg+")")
		r.trap(-1, trapNoPrefix)
		r.done()
		return
	}
	r.trapDone(0, trapNoPrefix)
}

// login handles plain login (6.43+) and the legacy MD5 challenge.
func (s *Server) login(c *conn, cmd *Command, r *reply) {
	name, _ := cmd.Arg("name")
	pw, hasPw := cmd.Arg("password")
	resp, hasResp := cmd.Arg("response")
	want, known := s.opts.Users[name]
	switch {
	case hasPw:
		if known && pw == want {
			c.loggedIn = true
			r.done()
			return
		}
	case hasResp:
		if known && c.challenge != "" {
			ch, _ := hex.DecodeString(c.challenge)
			h := md5.New()
			h.Write([]byte{0})
			h.Write([]byte(want))
			h.Write(ch)
			if resp == "00"+hex.EncodeToString(h.Sum(nil)) {
				c.loggedIn = true
				r.done()
				return
			}
		}
	default:
		// Pre-6.43 first stage: hand out a challenge.
		var b [16]byte
		rand.Read(b[:])
		c.challenge = hex.EncodeToString(b[:])
		r.done(prop{"ret", c.challenge})
		return
	}
	r.trapDone(-1, trapLogin)
}

// cancel ends running commands: the one tagged =tag=, or all without it.
// Each cancelled command gets "!trap =category=2 =message=interrupted" and
// "!done"; the cancel itself gets "!done".
func (s *Server) cancel(c *conn, cmd *Command, r *reply) {
	tag, one := cmd.Arg("tag")
	var out []byte
	for t, run := range c.running {
		if one && t != tag {
			continue
		}
		if run.l != nil {
			s.removeListener(run.l)
		}
		delete(c.running, t)
		rr := &reply{tag: run.cmd.Tag, tagged: run.cmd.Tagged}
		rr.trapDone(2, "interrupted")
		out = append(out, rr.buf...)
	}
	// unconfirmed: cancelling a tag that is not running answers !done.
	r.buf = append(out, r.buf...)
	r.done()
}

// listener is a running listen command.
type listener struct {
	c        *conn
	menu     string
	cmd      Command
	proplist []string
}

func (s *Server) listen(c *conn, menu string, cmd *Command) {
	l := &listener{c: c, menu: menu, cmd: *cmd, proplist: proplist(cmd)}
	if s.listeners[menu] == nil {
		s.listeners[menu] = map[*listener]bool{}
	}
	s.listeners[menu][l] = true
	c.running[cmd.Tag] = &running{cmd: *cmd, l: l}
}

func (s *Server) removeListener(l *listener) { delete(s.listeners[l.menu], l) }

// notify sends an item change to the menu's listeners; dead marks removal.
func (s *Server) notify(menu string, it item) {
	if len(s.listeners[menu]) == 0 {
		return
	}
	due := time.Now().Add(s.opts.Latency)
	for l := range s.listeners[menu] {
		rr := &reply{tag: l.cmd.Tag, tagged: l.cmd.Tagged}
		if _, dead := it.get(".dead"); dead {
			rr.re(it)
		} else {
			rr.re(project(it, l.proplist))
		}
		l.c.enqueue(outMsg{due: due, data: rr.buf})
	}
}

func deadItem(id uint64) item { return item{{".id", fmtID(id)}, {".dead", "yes"}} }

func proplist(cmd *Command) []string {
	v, ok := cmd.Arg(".proplist")
	if !ok {
		return nil
	}
	if v == "" {
		return []string{}
	}
	return strings.Split(v, ",")
}

// printItems answers print/getall: queries, .proplist, count-only, !empty.
func (s *Server) printItems(cmd *Command, r *reply, items iter.Seq[row]) {
	q := compileQuery(cmd.Query)
	if _, ok := q.eval(item(nil)); !ok {
		r.trapDone(-1, trapQuery)
		return
	}
	pl := proplist(cmd)
	_, countOnly := cmd.Arg("count-only")
	n := 0
	for it := range items {
		if len(q) > 0 {
			if m, _ := q.eval(it); !m {
				continue
			}
		}
		n++
		if !countOnly {
			r.re(project(it.item(), pl))
		}
	}
	if countOnly {
		r.done(prop{"ret", strconv.Itoa(n)})
		return
	}
	if n == 0 && s.opts.EmptyReplies {
		r.empty()
	}
	r.done()
}

func (s *Server) resource() item {
	up := time.Since(s.start).Truncate(time.Second)
	return item{
		{"uptime", up.String()}, {"version", s.opts.Version}, {"build-time", "2025-03-01 12:00:00"},
		{"factory-software", "7.1"}, {"free-memory", "900000000"}, {"total-memory", "1073741824"},
		{"cpu", "QEMU"}, {"cpu-count", "1"}, {"cpu-frequency", "2400"}, {"cpu-load", "0"},
		{"free-hdd-space", "100000000"}, {"total-hdd-space", "134217728"},
		{"architecture-name", "x86_64"}, {"board-name", "CHR"}, {"platform", "MikroTik"},
	}
}

// ids returns the comma-separated ids of =.id= or =numbers=.
func ids(cmd *Command) ([]string, bool) {
	v, ok := cmd.Arg(".id")
	if !ok {
		v, ok = cmd.Arg("numbers")
	}
	if !ok || v == "" {
		return nil, false
	}
	return strings.Split(v, ","), true
}

func parseID(s string) (uint64, bool) {
	if !strings.HasPrefix(s, "*") {
		return 0, false
	}
	n, err := strconv.ParseUint(s[1:], 16, 64)
	return n, err == nil && n > 0
}

// rosDuration matches RouterOS time values: "1d2h3m4s", "1w", "300",
// "00:05:00", "1d00:00:00", "500ms".
var rosDuration = regexp.MustCompile(`^(\d+w)?(\d+d)?((\d+h)?(\d+m)?(\d+s)?(\d+ms)?|\d{1,2}:\d{2}:\d{2}(\.\d+)?)$|^\d+$`)

// ---- address lists ----

var addrFields = map[string]bool{"list": true, "address": true, "comment": true, "timeout": true, "disabled": true}

func (s *Server) addrCmd(c *conn, fi int, menu, verb string, cmd *Command, r *reply) {
	m := s.fams[fi].addr
	switch verb {
	case "print", "getall":
		s.printItems(cmd, r, func(yield func(row) bool) {
			for e := m.head; e != nil; e = e.next {
				if !yield(e) {
					return
				}
			}
		})
	case "add":
		s.addrAdd(m, menu, cmd, r)
	case "remove":
		s.remove(cmd, r, func(id uint64) bool { return m.byID[id] != nil }, func(id uint64) {
			e := m.byID[id]
			kids := slices.Clone(e.children)
			m.unlink(e)
			for _, k := range kids {
				s.notify(menu, deadItem(k))
			}
			s.notify(menu, deadItem(id))
		})
	case "set", "unset", "enable", "disable":
		s.addrSet(m, menu, verb, cmd, r)
	case "listen":
		s.listen(c, menu, cmd)
	default:
		r.trapDone(0, trapNoCommand)
	}
}

func (s *Server) addrAdd(m *addrMenu, menu string, cmd *Command, r *reply) {
	e := &addrEntry{created: creationTime(time.Now())}
	var addr string
	for _, a := range cmd.Args {
		if !addrFields[a.Key] && !strings.HasPrefix(a.Key, ".") {
			r.trapDone(-1, trapUnknown+a.Key)
			return
		}
	}
	list, okL := cmd.Arg("list")
	addr, okA := cmd.Arg("address")
	if !okL || list == "" {
		r.trapDone(-1, trapMissing+"list")
		return
	}
	if !okA || addr == "" {
		r.trapDone(-1, trapMissing+"address")
		return
	}
	pa, msg := parseListAddress(addr, m.v6)
	if msg != "" {
		r.trapDone(-1, msg)
		return
	}
	e.list, e.addr = list, pa
	if v, ok := cmd.Arg("comment"); ok {
		e.comment, e.hasCmt = v, true
	}
	if v, ok := cmd.Arg("timeout"); ok && v != "" {
		if !rosDuration.MatchString(v) {
			r.trapDone(1, "invalid value for argument timeout") // unconfirmed wording
			return
		}
		// unconfirmed: RouterOS shows the remaining time, counting down;
		// the simulator shows the value as given and never expires it.
		e.timeout, e.dynamic = v, true
	}
	if v, ok := cmd.Arg("disabled"); ok {
		b, ok := parseBool(v)
		if !ok {
			r.trapDone(1, "invalid value for argument disabled")
			return
		}
		e.disabled = b
	}
	if m.dup[dupKey{e.list, e.addr.shown}] > 0 {
		r.trapDone(-1, trapDuplicate)
		return
	}
	m.link(e)
	if pa.dns {
		m.resolveChildren(e, s.opts.DNS, e.created)
	}
	r.done(prop{"ret", fmtID(e.id)})
	s.notify(menu, e.item())
	for _, k := range e.children {
		s.notify(menu, m.byID[k].item())
	}
}

// setChanges reads the ids and the property changes of a set, unset,
// enable or disable command, the same in every menu; on a missing argument
// it traps and reports !ok.
func setChanges(verb string, cmd *Command, r *reply) (list []string, changes []Arg, ok bool) {
	list, ok = ids(cmd)
	if !ok {
		r.trapDone(-1, trapMissing+"numbers")
		return nil, nil, false
	}
	changes = cmd.Args
	switch verb {
	case "enable":
		changes = []Arg{{"disabled", "no"}}
	case "disable":
		changes = []Arg{{"disabled", "yes"}}
	case "unset":
		vn, ok := cmd.Arg("value-name")
		if !ok {
			r.trapDone(-1, trapMissing+"value-name")
			return nil, nil, false
		}
		changes = []Arg{{"!" + vn, ""}}
	}
	return list, changes, true
}

// addrSet handles set, unset, enable and disable on address-list entries.
// Entries are changed one id at a time; the first failure traps and stops.
func (s *Server) addrSet(m *addrMenu, menu, verb string, cmd *Command, r *reply) {
	list, changes, ok := setChanges(verb, cmd, r)
	if !ok {
		return
	}
	for _, a := range changes {
		k := strings.TrimPrefix(a.Key, "!")
		if strings.HasPrefix(a.Key, ".") || k == "numbers" {
			continue
		}
		if !addrFields[k] || (a.Key != k && (k == "list" || k == "address")) {
			r.trapDone(-1, trapUnknown+a.Key)
			return
		}
	}
	for _, sid := range list {
		id, _ := parseID(sid)
		e := m.byID[id]
		if e == nil {
			r.trapDone(-1, trapNoSuch)
			return
		}
		newList, newAddr := e.list, e.addr
		comment, hasCmt, timeout, disabled := e.comment, e.hasCmt, e.timeout, e.disabled
		for _, a := range changes {
			switch a.Key {
			case "list":
				newList = a.Value
			case "address":
				pa, msg := parseListAddress(a.Value, m.v6)
				if msg != "" {
					r.trapDone(-1, msg)
					return
				}
				newAddr = pa
			case "comment":
				comment, hasCmt = a.Value, true
			case "!comment":
				comment, hasCmt = "", false
			case "timeout":
				if a.Value != "" && !rosDuration.MatchString(a.Value) {
					r.trapDone(1, "invalid value for argument timeout")
					return
				}
				timeout = a.Value
			case "!timeout":
				timeout = ""
			case "disabled", "!disabled":
				b, ok := parseBool(a.Value)
				if !ok && a.Key == "disabled" {
					r.trapDone(1, "invalid value for argument disabled")
					return
				}
				disabled = b
			}
		}
		oldKey, newKey := dupKey{e.list, e.addr.shown}, dupKey{newList, newAddr.shown}
		if e.parent == 0 && oldKey != newKey {
			if m.dup[newKey] > 0 {
				r.trapDone(-1, trapDuplicate)
				return
			}
			if m.dup[oldKey]--; m.dup[oldKey] <= 0 {
				delete(m.dup, oldKey)
			}
			m.dup[newKey]++
		}
		e.list, e.comment, e.hasCmt, e.timeout, e.disabled = newList, comment, hasCmt, timeout, disabled
		e.dynamic = timeout != "" || e.parent != 0
		if oldKey != newKey {
			for _, k := range e.children {
				if ce := m.byID[k]; ce != nil {
					m.unlink(ce)
					s.notify(menu, deadItem(k))
				}
			}
			e.children = nil
			e.addr = newAddr
			if newAddr.dns {
				m.resolveChildren(e, s.opts.DNS, creationTime(time.Now()))
			}
		}
		m.gen++
		s.notify(menu, e.item())
	}
	r.done()
}

// remove removes comma-separated ids; see Options.RemoveAllOrNothing.
func (s *Server) remove(cmd *Command, r *reply, exists func(uint64) bool, del func(uint64)) {
	list, ok := ids(cmd)
	if !ok {
		r.trapDone(-1, trapMissing+"numbers")
		return
	}
	if s.opts.RemoveAllOrNothing {
		for _, sid := range list {
			if id, ok := parseID(sid); !ok || !exists(id) {
				r.trapDone(-1, trapNoSuch)
				return
			}
		}
	}
	for _, sid := range list {
		id, ok := parseID(sid)
		if !ok || !exists(id) {
			r.trapDone(-1, trapNoSuch)
			return
		}
		del(id)
	}
	r.done()
}

// ---- NAT ----

func (s *Server) natCmd(c *conn, fi int, menu, verb string, cmd *Command, r *reply) {
	m := s.fams[fi].nat
	switch verb {
	case "print", "getall":
		s.printItems(cmd, r, func(yield func(row) bool) {
			for _, rule := range m.rules {
				if !yield(rule.item()) {
					return
				}
			}
		})
	case "add":
		s.natAdd(m, menu, cmd, r)
	case "remove":
		s.remove(cmd, r, func(id uint64) bool { return m.index(id) >= 0 }, func(id uint64) {
			m.rules = slices.Delete(m.rules, m.index(id), m.index(id)+1)
			s.notify(menu, deadItem(id))
		})
	case "set", "unset", "enable", "disable":
		s.natSet(m, menu, verb, cmd, r)
	case "move":
		s.natMove(m, cmd, r)
	case "reset-counters", "reset-counters-all":
		r.done()
	case "listen":
		s.listen(c, menu, cmd)
	default:
		r.trapDone(0, trapNoCommand)
	}
}

// position resolves place-before/destination: a rule id, or a decimal
// print index as the console accepts. It returns -1 if there is no such rule.
// unconfirmed: whether the API accepts print indexes here.
func (m *natMenu) position(v string) int {
	if id, ok := parseID(v); ok {
		return m.index(id)
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= len(m.rules) {
		return n
	}
	return -1
}

func (s *Server) natAdd(m *natMenu, menu string, cmd *Command, r *reply) {
	p := map[string]string{}
	disabled := false
	pos := len(m.rules)
	for _, a := range cmd.Args {
		switch {
		case a.Key == "disabled":
			b, ok := parseBool(a.Value)
			if !ok {
				r.trapDone(1, "invalid value for argument disabled")
				return
			}
			disabled = b
		case a.Key == "place-before":
			// Only positions the new rule; RouterOS does not store it.
			if pos = m.position(a.Value); pos < 0 {
				r.trapDone(-1, trapNoSuch)
				return
			}
		case natFieldSet[a.Key]:
			if a.Value != "" || a.Key == "comment" {
				p[a.Key] = a.Value
			}
		case strings.HasPrefix(a.Key, "."):
		default:
			r.trapDone(-1, trapUnknown+a.Key)
			return
		}
	}
	if p["action"] == "" {
		p["action"] = "accept"
	}
	if msg := m.validate(p); msg != "" {
		r.trapDone(-1, msg)
		return
	}
	rule := &natRule{id: m.nextID, props: p, disabled: disabled}
	m.nextID++
	m.rules = slices.Insert(m.rules, pos, rule)
	r.done(prop{"ret", fmtID(rule.id)})
	s.notify(menu, rule.item())
}

func (s *Server) natSet(m *natMenu, menu, verb string, cmd *Command, r *reply) {
	list, changes, ok := setChanges(verb, cmd, r)
	if !ok {
		return
	}
	for _, sid := range list {
		id, _ := parseID(sid)
		i := m.index(id)
		if i < 0 {
			r.trapDone(-1, trapNoSuch)
			return
		}
		rule := m.rules[i]
		p := make(map[string]string, len(rule.props))
		for k, v := range rule.props {
			p[k] = v
		}
		disabled := rule.disabled
		for _, a := range changes {
			k := strings.TrimPrefix(a.Key, "!")
			switch {
			case a.Key == ".id" || a.Key == "numbers" || strings.HasPrefix(a.Key, "."):
			case k == "disabled":
				b, ok := parseBool(a.Value)
				if !ok && a.Key == k {
					r.trapDone(1, "invalid value for argument disabled")
					return
				}
				disabled = b
			case !natFieldSet[k]:
				r.trapDone(-1, trapUnknown+a.Key)
				return
			case a.Key != k: // =!prop= unsets
				delete(p, k)
			case a.Value == "" && k != "comment" && k != "log-prefix":
				delete(p, k)
			default:
				p[k] = a.Value
			}
		}
		if p["action"] == "" {
			p["action"] = "accept"
		}
		if msg := m.validate(p); msg != "" {
			r.trapDone(-1, msg)
			return
		}
		rule.props, rule.disabled = p, disabled
		s.notify(menu, rule.item())
	}
	r.done()
}

// natMove moves the rules in =numbers= (in the order given) before
// =destination=, or to the end without one.
func (s *Server) natMove(m *natMenu, cmd *Command, r *reply) {
	list, ok := ids(cmd)
	if !ok {
		r.trapDone(-1, trapMissing+"numbers")
		return
	}
	var moved []*natRule
	set := map[*natRule]bool{}
	for _, sid := range list {
		id, _ := parseID(sid)
		i := m.index(id)
		if i < 0 {
			r.trapDone(-1, trapNoSuch)
			return
		}
		if !set[m.rules[i]] {
			moved = append(moved, m.rules[i])
			set[m.rules[i]] = true
		}
	}
	dest := len(m.rules)
	if v, ok := cmd.Arg("destination"); ok && v != "" {
		if dest = m.position(v); dest < 0 {
			r.trapDone(-1, trapNoSuch)
			return
		}
	}
	// The anchor is the first unmoved rule at or after the destination.
	var anchor *natRule
	for i := dest; i < len(m.rules); i++ {
		if !set[m.rules[i]] {
			anchor = m.rules[i]
			break
		}
	}
	rest := slices.DeleteFunc(slices.Clone(m.rules), func(x *natRule) bool { return set[x] })
	at := len(rest)
	if anchor != nil {
		at = slices.Index(rest, anchor)
	}
	m.rules = slices.Insert(rest, at, moved...)
	r.done()
}
