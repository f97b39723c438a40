package routerostest

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// addrEntry is one address-list entry. Entries form a doubly linked list in
// insertion order so print keeps RouterOS's order while removal stays O(1).
type addrEntry struct {
	id       uint64
	list     string
	addr     parsedAddr
	comment  string
	hasCmt   bool
	timeout  string // non-empty makes the entry dynamic (RAM only)
	disabled bool
	dynamic  bool   // timeout entries and DNS children
	parent   uint64 // DNS child: id of the static DNS-name entry
	children []uint64
	created  string

	prev, next *addrEntry
}

// dupKey identifies an entry for duplicate detection: RouterOS refuses a
// second entry with the same list and the same normalised address.
type dupKey struct{ list, addr string }

// addrMenu is /ip/firewall/address-list or /ipv6/firewall/address-list.
type addrMenu struct {
	v6         bool
	nextID     uint64
	head, tail *addrEntry
	byID       map[uint64]*addrEntry
	// dup counts entries per key; seeded duplicates make counts > 1.
	// DNS children are not counted. unconfirmed: whether a dynamic DNS
	// child blocks a static add of the same address.
	dup map[dupKey]int
	gen uint64 // bumped on every change; invalidates ranges
	// ranges caches, per list, sorted merged ranges of enabled entries for
	// Route; rebuilt lazily when gen moved.
	ranges    map[string][]addrRange
	rangesGen uint64
}

type addrRange struct{ lo, hi netip.Addr }

func newAddrMenu(v6 bool) *addrMenu {
	return &addrMenu{v6: v6, nextID: 1, byID: map[uint64]*addrEntry{}, dup: map[dupKey]int{}}
}

func (m *addrMenu) len() int { return len(m.byID) }

func (m *addrMenu) link(e *addrEntry) {
	e.id = m.nextID
	m.nextID++
	e.prev = m.tail
	if m.tail != nil {
		m.tail.next = e
	} else {
		m.head = e
	}
	m.tail = e
	m.byID[e.id] = e
	if e.parent == 0 {
		m.dup[dupKey{e.list, e.addr.shown}]++
	}
	m.gen++
}

func (m *addrMenu) unlink(e *addrEntry) {
	for _, c := range e.children {
		if ce := m.byID[c]; ce != nil {
			m.unlink(ce)
		}
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		m.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		m.tail = e.prev
	}
	e.prev, e.next = nil, nil
	delete(m.byID, e.id)
	if e.parent == 0 {
		k := dupKey{e.list, e.addr.shown}
		if m.dup[k]--; m.dup[k] <= 0 {
			delete(m.dup, k)
		}
	}
	m.gen++
}

// item renders an entry with the fields print shows, in RouterOS's order.
func (e *addrEntry) item() item {
	it := item{
		{".id", fmtID(e.id)},
		{"list", e.list},
		{"address", e.addr.shown},
		{"creation-time", e.created},
	}
	if e.timeout != "" {
		it = append(it, prop{"timeout", e.timeout})
	}
	it = append(it, prop{"dynamic", fmtBool(e.dynamic)}, prop{"disabled", fmtBool(e.disabled)})
	if e.hasCmt {
		it = append(it, prop{"comment", e.comment})
	}
	return it
}

// get is item().get without rendering the item.
func (e *addrEntry) get(k string) (string, bool) {
	switch k {
	case ".id":
		return fmtID(e.id), true
	case "list":
		return e.list, true
	case "address":
		return e.addr.shown, true
	case "creation-time":
		return e.created, true
	case "timeout":
		return e.timeout, e.timeout != ""
	case "dynamic":
		return fmtBool(e.dynamic), true
	case "disabled":
		return fmtBool(e.disabled), true
	case "comment":
		return e.comment, e.hasCmt
	}
	return "", false
}

// resolveChildren adds the dynamic children of a DNS-name entry from the
// server's fixed resolution table. Real routers resolve asynchronously and
// re-resolve on TTL expiry; the simulator resolves once, at add time.
func (m *addrMenu) resolveChildren(e *addrEntry, table map[string][]netip.Addr, now string) {
	for _, a := range table[e.addr.shown] {
		if a.Is6() != m.v6 {
			continue
		}
		c := &addrEntry{
			list:    e.list,
			addr:    prefixAddr(netip.PrefixFrom(a, a.BitLen())),
			dynamic: true,
			parent:  e.id,
			created: now,
			// unconfirmed: RouterOS shows the DNS name as the child's comment.
			comment: e.addr.shown, hasCmt: true,
		}
		m.link(c)
		e.children = append(e.children, c.id)
	}
}

// listRanges returns the merged ranges of enabled, non-DNS entries of list.
func (m *addrMenu) listRanges(list string) []addrRange {
	if m.ranges == nil || m.rangesGen != m.gen {
		all := map[string][]addrRange{}
		for e := m.head; e != nil; e = e.next {
			if e.disabled || e.addr.dns {
				continue
			}
			if p := m.byID[e.parent]; e.parent != 0 && p != nil && p.disabled {
				continue
			}
			all[e.list] = append(all[e.list], addrRange{e.addr.lo, e.addr.hi})
		}
		for k, rs := range all {
			slices.SortFunc(rs, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
			merged := rs[:0]
			for _, r := range rs {
				if n := len(merged); n > 0 && !merged[n-1].hi.Less(r.lo) {
					if merged[n-1].hi.Less(r.hi) {
						merged[n-1].hi = r.hi
					}
					continue
				}
				merged = append(merged, r)
			}
			all[k] = merged
		}
		m.ranges, m.rangesGen = all, m.gen
	}
	return m.ranges[list]
}

// contains reports whether a falls in an enabled entry of list.
func (m *addrMenu) contains(list string, a netip.Addr) bool {
	rs := m.listRanges(list)
	i, _ := slices.BinarySearchFunc(rs, a, func(r addrRange, a netip.Addr) int {
		if r.hi.Less(a) {
			return -1
		}
		if a.Less(r.lo) {
			return 1
		}
		return 0
	})
	return i < len(rs) && inRange(a, rs[i].lo, rs[i].hi)
}

func fmtID(id uint64) string { return "*" + strings.ToUpper(strconv.FormatUint(id, 16)) }

func fmtBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// parseBool accepts RouterOS's spellings of booleans.
func parseBool(s string) (bool, bool) {
	switch s {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}

// creationTime formats t as RouterOS 7.10+ does.
func creationTime(t time.Time) string { return t.Format("2006-01-02 15:04:05") }

// restart is what a reboot does to the menu: dynamic entries (timeouts,
// DNS children) vanish and the static ones are numbered again from *1 in
// insertion order. unconfirmed: that RouterOS renumbers .id on reboot; its
// documentation promises ids only within a session, so a client must
// assume it may.
func (m *addrMenu) restart() {
	var keep []*addrEntry
	for e := m.head; e != nil; e = e.next {
		if !e.dynamic {
			keep = append(keep, e)
		}
	}
	*m = *newAddrMenu(m.v6)
	for _, e := range keep {
		e.prev, e.next, e.children = nil, nil, nil
		m.link(e)
	}
}
