package routeros

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend/routeros/routerostest"
	"github.com/go-routeros/routeros/v3"
)

// importer runs the subset of RouterOS scripting that Script emits against
// the simulator over the API, the way /import would: menu lines, commands
// (add, set, remove, move with [find where …] arguments), ":do { } on-error={}",
// ":if ([:len [find where …]] op n) do={ } else={ }" and ":error". Like
// /import it stops at the first failing command. It is a test of Script's
// output against RouterOS's script grammar as documented, not a RouterOS.
type importer struct {
	c    *routeros.Client
	menu string // e.g. /ip/firewall/nat
}

func newImporter(t *testing.T, srv *routerostest.Server) *importer {
	nc, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(time.Minute))
	c, err := routeros.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("admin", ""); err != nil {
		t.Fatal(err)
	}
	return &importer{c: c}
}

type token struct {
	kind byte   // 'w' word, 's' string, '[' bracket, '{', '}', '(', ')'
	text string // word, decoded string, or bracket contents
	val  *token // for "key=" words: the value token
}

var errSyntax = errors.New("syntax")

// unquote decodes a RouterOS string starting at s[0]=='"'.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, errSyntax
			}
			n := s[i+1]
			if strings.IndexByte(`\"$?`, n) >= 0 {
				b.WriteByte(n)
				i++
				continue
			}
			if i+2 >= len(s) {
				return "", 0, errSyntax
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
				return "", 0, fmt.Errorf("bad escape %q", s[i:i+3])
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			if c < 0x20 || c == '$' || c == '?' {
				return "", 0, fmt.Errorf("unescaped %q in string", c)
			}
			b.WriteByte(c)
		}
	}
	return "", 0, errSyntax
}

// bracket returns the length of the balanced [...] at s[0].
func bracket(s string) (int, error) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			_, n, err := unquote(s[i:])
			if err != nil {
				return 0, err
			}
			i += n - 1
		case '[':
			depth++
		case ']':
			if depth--; depth == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, errSyntax
}

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == ';':
			i++
		case strings.IndexByte("{}()", c) >= 0:
			out = append(out, token{kind: c})
			i++
		case c == '"':
			v, n, err := unquote(s[i:])
			if err != nil {
				return nil, err
			}
			out = append(out, token{kind: 's', text: v})
			i += n
		case c == '[':
			n, err := bracket(s[i:])
			if err != nil {
				return nil, err
			}
			out = append(out, token{kind: '[', text: s[i+1 : i+n-1]})
			i += n
		default:
			j := i
			for j < len(s) && strings.IndexByte(" ;{}()\"[", s[j]) < 0 {
				j++
				if s[j-1] == '=' || s[j-1] == '~' {
					break
				}
			}
			w := token{kind: 'w', text: s[i:j]}
			i = j
			if (strings.HasSuffix(w.text, "=") || strings.HasSuffix(w.text, "~")) && i < len(s) && (s[i] == '"' || s[i] == '[') {
				sub, err := tokenize(s[i : i+mustLen(s[i:])])
				if err != nil {
					return nil, err
				}
				w.val = &sub[0]
				i += mustLen(s[i:])
			} else if strings.HasSuffix(w.text, "=") && i < len(s) && s[i] != '{' {
				for j < len(s) && strings.IndexByte(" ;{}()\"[", s[j]) < 0 {
					j++
				}
				w.val = &token{kind: 'w', text: s[i:j]}
				i = j
			}
			out = append(out, w)
		}
	}
	return out, nil
}

func mustLen(s string) int {
	if s[0] == '"' {
		_, n, _ := unquote(s)
		return n
	}
	n, _ := bracket(s)
	return n
}

// run imports a whole script.
func (im *importer) run(script string) error {
	for ln, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '/' {
			im.menu = "/" + strings.ReplaceAll(line[1:], " ", "/")
			continue
		}
		toks, err := tokenize(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", ln+1, err)
		}
		if rest, err := im.stmt(toks); err != nil || len(rest) > 0 {
			return fmt.Errorf("line %d: %v (left %d tokens)", ln+1, err, len(rest))
		}
	}
	return nil
}

// block reads "{ ... }" and returns its tokens.
func block(toks []token) ([]token, []token, error) {
	if len(toks) == 0 || toks[0].kind != '{' {
		return nil, nil, errSyntax
	}
	depth := 0
	for i, t := range toks {
		switch t.kind {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return toks[1:i], toks[i+1:], nil
			}
		}
	}
	return nil, nil, errSyntax
}

func (im *importer) stmts(toks []token) error {
	for len(toks) > 0 {
		var err error
		if toks, err = im.stmt(toks); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) stmt(toks []token) ([]token, error) {
	switch toks[0].text {
	case ":do":
		body, rest, err := block(toks[1:])
		if err != nil || len(rest) < 2 || rest[0].text != "on-error=" {
			return nil, errSyntax
		}
		_, rest, err = block(rest[1:])
		if err != nil {
			return nil, err
		}
		im.stmts(body) // on-error={}: failures are ignored
		return rest, nil
	case ":error":
		return nil, fmt.Errorf(":error %s", toks[1].text)
	case ":if":
		// :if ( [:len [find where …]] op n ) do={…} [else={…}]
		if len(toks) < 7 || toks[1].kind != '(' || toks[2].kind != '[' || toks[5].kind != ')' || toks[6].text != "do=" {
			return nil, errSyntax
		}
		inner := strings.TrimPrefix(toks[2].text, ":len [")
		ids, err := im.find(strings.TrimSuffix(inner, "]"))
		if err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(toks[4].text)
		var cond bool
		switch toks[3].text {
		case "=":
			cond = len(ids) == n
		case "<":
			cond = len(ids) < n
		default:
			return nil, errSyntax
		}
		then, rest, err := block(toks[7:])
		if err != nil {
			return nil, err
		}
		var els []token
		if len(rest) > 0 && rest[0].text == "else=" {
			if els, rest, err = block(rest[1:]); err != nil {
				return nil, err
			}
		}
		if cond {
			return rest, im.stmts(then)
		}
		return rest, im.stmts(els)
	}
	// A command runs to the end of the statement (a closing brace or ';'
	// was dropped by the tokenizer, so up to the next command word).
	end := 1
	for end < len(toks) && toks[end].kind != '}' && !isVerb(toks[end]) {
		end++
	}
	return toks[end:], im.command(toks[:end])
}

func isVerb(t token) bool {
	return t.kind == 'w' && t.val == nil && (t.text == "add" || t.text == "set" || t.text == "remove" || t.text == "move")
}

func (im *importer) command(toks []token) error {
	words := []string{im.menu + "/" + toks[0].text}
	for _, t := range toks[1:] {
		switch {
		case t.kind == '[': // the numbers argument
			ids, err := im.find(t.text)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil // RouterOS: an empty find makes set/remove/move no-ops
			}
			words = append(words, "=numbers="+strings.Join(ids, ","))
		case t.kind == 'w' && strings.HasPrefix(t.text, "!"):
			words = append(words, "=!"+t.text[1:]+"=")
		case t.kind == 'w' && t.val != nil:
			v := t.val.text
			if t.val.kind == '[' {
				ids, err := im.find(v)
				if err != nil {
					return err
				}
				if len(ids) != 1 {
					return fmt.Errorf("%s%s: %d ids", t.text, v, len(ids))
				}
				v = ids[0]
			}
			words = append(words, "="+t.text+v)
		default:
			return fmt.Errorf("unexpected token %+v", t)
		}
	}
	_, err := im.c.RunArgs(words)
	return err
}

// find evaluates "find where a="x" and b!="y" and c~"re" and !(d~"re")".
func (im *importer) find(expr string) ([]string, error) {
	body, ok := strings.CutPrefix(expr, "find where ")
	if !ok {
		return nil, fmt.Errorf("find: %q", expr)
	}
	toks, err := tokenize(body)
	if err != nil {
		return nil, err
	}
	type term struct {
		neg     bool
		k, op   string
		v       string
		pattern *regexp.Regexp
	}
	var terms []term
	for i := 0; i < len(toks); i++ {
		var tm term
		if toks[i].text == "and" {
			continue
		}
		t := toks[i]
		if t.text == "!" && i+1 < len(toks) && toks[i+1].kind == '(' {
			tm.neg, t, i = true, toks[i+2], i+3 // ! ( term )
		}
		var k string
		for _, op := range []string{"!=", "~", "="} {
			if s, ok := strings.CutSuffix(t.text, op); ok {
				k, tm.op = s, op
				break
			}
		}
		if k == "" || t.val == nil {
			return nil, fmt.Errorf("find: term %q", t.text)
		}
		tm.k, tm.v = k, t.val.text
		if tm.op == "~" {
			if tm.pattern, err = regexp.CompilePOSIX(tm.v); err != nil {
				return nil, err
			}
		}
		terms = append(terms, tm)
	}
	r, err := im.c.Run(im.menu + "/print")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, re := range r.Re {
		ok := true
		for _, tm := range terms {
			v := re.Map[tm.k]
			var m bool
			switch tm.op {
			case "=":
				m = v == tm.v
			case "!=":
				m = v != tm.v
			case "~":
				m = tm.pattern.MatchString(v)
			}
			if m == tm.neg {
				ok = false
				break
			}
		}
		if ok {
			ids = append(ids, re.Map[".id"])
		}
	}
	return ids, nil
}
