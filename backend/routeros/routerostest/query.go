package routerostest

import (
	"strconv"
	"strings"
)

// prop is one property of a printed item; items keep RouterOS's field order.
type prop struct{ k, v string }

// item is one printed row.
type item []prop

// A row is what print and queries see of an object: its properties one
// at a time, or rendered whole. Queries read properties without rendering
// the row, as a router scanning a list for count-only does not print it.
type row interface {
	get(k string) (string, bool)
	item() item
}

func (it item) item() item { return it }

func (it item) get(k string) (string, bool) {
	for _, p := range it {
		if p.k == k {
			return p.v, true
		}
	}
	return "", false
}

// query is a compiled list of query words (without the leading '?').
type query []qword

// A qword is one query word, parsed once per command rather than once per
// item scanned.
type qword struct {
	ops   string // a "#ops" word: the operations; else ""
	stack bool
	kind  byte // '-' lacks, '=' or 0 equals/has, '<', '>'
	k, v  string
	hasV  bool // "k=v" rather than "k" (kind 0)
}

// compileQuery parses the query words of a command.
func compileQuery(words []string) query {
	q := make(query, len(words))
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "#"):
			q[i] = qword{stack: true, ops: w[1:]}
		case strings.HasPrefix(w, "-"):
			q[i] = qword{kind: '-', k: w[1:]}
		case strings.HasPrefix(w, "="), strings.HasPrefix(w, "<"), strings.HasPrefix(w, ">"):
			k, v, found := strings.Cut(w[1:], "=")
			q[i] = qword{kind: w[0], k: k, v: v, hasV: found}
		default:
			k, v, found := strings.Cut(w, "=")
			q[i] = qword{k: k, v: v, hasV: found}
		}
	}
	return q
}

// eval runs the RouterOS query stack machine against one item.
//
// Every plain query word pushes one boolean; "#ops" words operate on the
// stack: '!' negates the top, '&' and '|' pop two and push the result, '.'
// pushes a copy of the top, and a decimal number pushes a copy of the value
// at that index (0 is the bottom). After all words the stack is ANDed; an
// empty stack is true. A malformed stack operation returns ok=false, which
// the caller turns into a trap.
//
// unconfirmed: the index base of digit operations, and what RouterOS does on
// stack underflow (here: a trap).
func (q query) eval(it row) (match, ok bool) {
	var buf [16]bool // the stack, without an allocation per item scanned
	st := buf[:0]
	for _, w := range q {
		if w.stack {
			ops := w.ops
			for i := 0; i < len(ops); i++ {
				c := ops[i]
				switch {
				case c == '!':
					if len(st) < 1 {
						return false, false
					}
					st[len(st)-1] = !st[len(st)-1]
				case c == '&' || c == '|':
					if len(st) < 2 {
						return false, false
					}
					a, b := st[len(st)-2], st[len(st)-1]
					st = st[:len(st)-2]
					if c == '&' {
						st = append(st, a && b)
					} else {
						st = append(st, a || b)
					}
				case c == '.':
					if len(st) < 1 {
						return false, false
					}
					st = append(st, st[len(st)-1])
				case c >= '0' && c <= '9':
					j := i
					for j < len(ops) && ops[j] >= '0' && ops[j] <= '9' {
						j++
					}
					n, err := strconv.Atoi(ops[i:j])
					if err != nil || n >= len(st) {
						return false, false
					}
					st = append(st, st[n])
					i = j - 1
				default:
					return false, false
				}
			}
			continue
		}
		st = append(st, evalWord(w, it))
	}
	for _, b := range st {
		if !b {
			return false, true
		}
	}
	return true, true
}

// evalWord evaluates one non-stack query word.
func evalWord(w qword, it row) bool {
	got, has := it.get(w.k)
	switch w.kind {
	case '-':
		return !has
	case '=':
		return has && got == w.v
	case '<', '>':
		if !w.hasV || !has {
			return false
		}
		c := compareValues(got, w.v)
		if w.kind == '<' {
			return c < 0
		}
		return c > 0
	default:
		if !w.hasV {
			return has
		}
		return has && got == w.v
	}
}

// compareValues orders two property values: numerically when both are
// decimal numbers or both are *HEX ids, else as strings.
// unconfirmed: RouterOS compares by the property's type (addresses, times).
func compareValues(a, b string) int {
	if x, ok := numValue(a); ok {
		if y, ok := numValue(b); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(a, b)
}

func numValue(s string) (uint64, bool) {
	if strings.HasPrefix(s, "*") {
		n, err := strconv.ParseUint(s[1:], 16, 64)
		return n, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// project applies .proplist: the named properties in the requested order,
// skipping ones the item lacks. A nil list keeps the item whole.
func project(it item, proplist []string) item {
	if proplist == nil {
		return it
	}
	out := make(item, 0, len(proplist))
	for _, k := range proplist {
		if v, ok := it.get(k); ok {
			out = append(out, prop{k, v})
		}
	}
	return out
}
