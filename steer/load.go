package steer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/geosteer/geosteer/cidr"
	"go.yaml.in/yaml/v3"
)

// maxPolicySize bounds what Load reads: a policy is written by hand.
const maxPolicySize = 4 << 20

// LoadFile reads a policy file (see [Load]); address-list files named in
// groups are read relative to the policy file's directory.
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("steer: %w", err)
	}
	defer f.Close()
	return Load(path, f, os.DirFS(filepath.Dir(path)))
}

// Load reads a policy in the YAML policy format (documented in
// testdata/seed.yaml, a complete example). name is used in error messages;
// fsys holds the address-list files groups name (nil: naming one is an
// error).
//
// Every problem is reported, each once, as a *PolicyError with file, line
// and field, joined into one error: unknown fields, values of the wrong
// kind, bad addresses, duplicate names. Anchors, aliases and merge keys
// are refused, to keep a hand-edited file meaning what it says. Problems
// that need the country data (unknown countries, empty groups) or the
// whole policy (unknown targets, shadowed rules) are found by [Compile].
func Load(name string, r io.Reader, fsys fs.FS) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("steer: reading %s: %w", name, err)
	}
	if len(data) > maxPolicySize {
		return nil, &PolicyError{File: name, Err: fmt.Errorf("%w: file larger than %d bytes", ErrSyntax, maxPolicySize)}
	}
	d := &loader{fsys: fsys, p: &Policy{File: name, lines: map[string]int{}}}
	d.errs = errorList{file: name, lines: d.p.lines}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		line, msg := yamlErr(err)
		return nil, &PolicyError{File: name, Line: line, Err: fmt.Errorf("%w: %s", ErrSyntax, msg)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, &PolicyError{File: name, Line: extra.Line, Err: fmt.Errorf("%w: more than one YAML document", ErrSyntax)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == 0 {
		return nil, &PolicyError{File: name, Err: fmt.Errorf("%w: empty policy", ErrSyntax)}
	}
	d.policy(root)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return d.p, nil
}

// yamlErr splits a yaml.v3 syntax error ("yaml: line 3: ...") into the
// line (0 if it gives none) and the message.
func yamlErr(err error) (int, string) {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				return n, rest[i+2:]
			}
		}
	}
	return 0, s
}

type loader struct {
	p    *Policy
	fsys fs.FS
	errs errorList
}

func (d *loader) errorf(field string, kind error, format string, args ...any) {
	d.errs.addf(field, kind, format, args...)
}

// fields walks a mapping node, calling f for each known key and reporting
// unknown and duplicate ones.
func (d *loader) fields(n *yaml.Node, path string, known []string, f func(key string, v *yaml.Node, path string)) {
	if !d.kind(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	d.mapping(n, path, func(key string, v *yaml.Node, field string) {
		for _, k := range known {
			if k == key {
				f(key, v, field)
				return
			}
		}
		d.errorf(field, ErrUnknownField, "%q (want one of %s)", key, strings.Join(known, ", "))
	})
}

// mapping walks a mapping node's pairs, recording each field's line.
func (d *loader) mapping(n *yaml.Node, path string, f func(key string, v *yaml.Node, path string)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := join(path, k.Value)
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			d.errs.lines[field] = k.Line
			d.errorf(field, ErrSyntax, "keys must be plain names (no merge keys)")
			continue
		}
		d.errs.lines[field] = k.Line
		if seen[k.Value] {
			d.errorf(field, ErrSyntax, "%q given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		if !d.plain(v, field) {
			continue
		}
		f(k.Value, v, field)
	}
}

// plain refuses anchors and aliases anywhere under n.
func (d *loader) plain(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.errs.lines[path] = n.Line
		d.errorf(path, ErrSyntax, "anchors and aliases are not supported")
		return false
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *loader) kind(n *yaml.Node, path string, k yaml.Kind, what string) bool {
	if n.Kind != k {
		d.errorf(path, ErrSyntax, "want %s", what)
		return false
	}
	return true
}

func (d *loader) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(path, ErrSyntax, "want a string")
		return "", false
	}
	return n.Value, true
}

func (d *loader) name(n *yaml.Node, path string) string {
	s, ok := d.str(n, path)
	if ok && !validName(s) {
		d.errorf(path, ErrSyntax, "name %q: want [a-z0-9_-]+, at most 63 characters", s)
	}
	return s
}

// list accepts a sequence of scalars, or a single scalar as a list of one.
func (d *loader) list(n *yaml.Node, path string) []string {
	if n.Kind == yaml.ScalarNode {
		s, ok := d.str(n, path)
		if !ok {
			return nil
		}
		return []string{s}
	}
	if !d.kind(n, path, yaml.SequenceNode, "a list") {
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		d.errs.lines[ep] = e.Line
		if !d.plain(e, ep) {
			continue
		}
		if s, ok := d.str(e, ep); ok {
			out = append(out, s)
		}
	}
	return out
}

func (d *loader) boolean(n *yaml.Node, path string) bool {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "true":
			return true
		case "false":
			return false
		}
	}
	d.errorf(path, ErrSyntax, "want true or false")
	return false
}

func (d *loader) integer(n *yaml.Node, path string, lo, hi int64) int64 {
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil && v >= lo && v <= hi {
			return v
		}
	}
	d.errorf(path, ErrSyntax, "want a whole number from %d to %d", lo, hi)
	return 0
}

func (d *loader) ports(n *yaml.Node, path string) []uint16 {
	var out []uint16
	for i, s := range d.list(n, path) {
		v, err := strconv.ParseUint(s, 10, 16)
		if err != nil || v == 0 {
			d.errorf(fmt.Sprintf("%s[%d]", path, i), ErrSyntax, "port %q: want 1 to 65535", s)
			continue
		}
		out = append(out, uint16(v))
	}
	return out
}

func (d *loader) addrs(n *yaml.Node, path string) cidr.Set {
	var b cidr.Builder
	for i, s := range d.list(n, path) {
		ep := fmt.Sprintf("%s[%d]", path, i)
		if err := b.AddList(ep, []byte(s), cidr.ParseOptions{}); err != nil {
			var pe *cidr.ParseError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			d.errorf(ep, ErrSyntax, "%q: %v", s, err)
		}
		if strings.ContainsAny(s, "#\n") {
			d.errorf(ep, ErrSyntax, "%q: one address, prefix or range per entry", s)
		}
	}
	set, _ := b.Set() // AddList has reported
	return set
}

func (d *loader) policy(n *yaml.Node) {
	p := d.p
	d.fields(n, "", []string{"targets", "entry_points", "groups", "rules", "overrides", "safety"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "targets":
			d.named(v, path, func(name string, v *yaml.Node, path string) {
				p.Targets = append(p.Targets, d.target(name, v, path))
			})
		case "entry_points":
			d.named(v, path, func(name string, v *yaml.Node, path string) {
				p.EntryPoints = append(p.EntryPoints, d.entryPoint(name, v, path))
			})
		case "groups":
			d.named(v, path, func(name string, v *yaml.Node, path string) {
				p.Groups = append(p.Groups, d.group(name, v, path))
			})
		case "rules":
			d.seq(v, path, func(v *yaml.Node, path string) { p.Rules = append(p.Rules, d.rule(v, path)) })
		case "overrides":
			d.seq(v, path, func(v *yaml.Node, path string) { p.Overrides = append(p.Overrides, d.override(v, path)) })
		case "safety":
			p.Safety = d.safety(v, path)
		}
	})
}

// named walks a mapping of names to definitions.
func (d *loader) named(n *yaml.Node, path string, f func(name string, v *yaml.Node, path string)) {
	if !d.kind(n, path, yaml.MappingNode, "a mapping of names to definitions") {
		return
	}
	d.mapping(n, path, func(key string, v *yaml.Node, path string) {
		if !validName(key) {
			d.errorf(path, ErrSyntax, "name %q: want [a-z0-9_-]+, at most 63 characters", key)
		}
		f(key, v, path)
	})
}

func (d *loader) seq(n *yaml.Node, path string, f func(v *yaml.Node, path string)) {
	if !d.kind(n, path, yaml.SequenceNode, "a list") {
		return
	}
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		d.errs.lines[ep] = e.Line
		if d.plain(e, ep) {
			f(e, ep)
		}
	}
}

func (d *loader) target(name string, n *yaml.Node, path string) Target {
	t := Target{Name: name}
	d.fields(n, path, []string{"ipv4", "ipv6", "strict", "comment"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "ipv4", "ipv6":
			s, ok := d.str(v, path)
			if !ok {
				return
			}
			ap, err := parseAddrPort(s, key == "ipv4")
			if err != nil {
				d.errorf(path, ErrSyntax, "%v", err)
			} else if key == "ipv4" {
				t.IPv4 = ap
			} else {
				t.IPv6 = ap
			}
		case "strict":
			t.Strict = d.boolean(v, path)
		case "comment":
			t.Comment, _ = d.str(v, path)
		}
	})
	return t
}

// parseAddrPort accepts "addr:port", "[v6]:port", or a bare address with
// port 25.
func parseAddrPort(s string, v4 bool) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		a, err2 := netip.ParseAddr(s)
		if err2 != nil {
			return ap, fmt.Errorf("%q: want an address with an optional port", s)
		}
		ap = netip.AddrPortFrom(a, 25)
	}
	if err := checkAddr(ap.Addr(), v4); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %w", s, err)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port 0", s)
	}
	return ap, nil
}

func checkAddr(a netip.Addr, v4 bool) error {
	switch {
	case a.Zone() != "":
		return errors.New("address with a zone")
	case v4 && !a.Is4():
		return errors.New("not an IPv4 address")
	case !v4 && (!a.Is6() || a.Is4In6()):
		return errors.New("not an IPv6 address (IPv4-mapped addresses go under ipv4)")
	}
	return nil
}

func (d *loader) entryPoint(name string, n *yaml.Node, path string) EntryPoint {
	e := EntryPoint{Name: name}
	d.fields(n, path, []string{"ipv4", "ipv6", "ports", "comment"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "ipv4", "ipv6":
			s, ok := d.str(v, path)
			if !ok {
				return
			}
			a, err := netip.ParseAddr(s)
			if err == nil {
				err = checkAddr(a, key == "ipv4")
			}
			if err != nil {
				d.errorf(path, ErrSyntax, "%q: %v", s, err)
			} else if key == "ipv4" {
				e.IPv4 = a
			} else {
				e.IPv6 = a
			}
		case "ports":
			e.Ports = d.ports(v, path)
		case "comment":
			e.Comment, _ = d.str(v, path)
		}
	})
	return e
}

func (d *loader) group(name string, n *yaml.Node, path string) Group {
	g := Group{Name: name}
	var b cidr.Builder
	d.fields(n, path, []string{"countries", "continents", "prefixes", "lists", "unknown", "min_entries", "comment"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "countries":
			g.Countries = d.codes(v, path, isCountryCode, "an ISO 3166-1 alpha-2 country code such as US")
		case "continents":
			g.Continents = d.codes(v, path, isContinent, "a continent code: AF AN AS EU NA OC SA")
		case "prefixes":
			b.AddSet(d.addrs(v, path))
		case "lists":
			g.Lists = d.list(v, path)
			for i, f := range g.Lists {
				b.AddSet(d.readList(f, fmt.Sprintf("%s[%d]", path, i)))
			}
		case "unknown":
			g.Unknown = d.boolean(v, path)
		case "min_entries":
			g.MinEntries = int(d.integer(v, path, 0, 1<<40))
		case "comment":
			g.Comment, _ = d.str(v, path)
		}
	})
	g.Addrs, _ = b.Set()
	return g
}

func (d *loader) codes(n *yaml.Node, path string, valid func(string) bool, want string) []string {
	var out []string
	for i, s := range d.list(n, path) {
		c := strings.ToUpper(s)
		if !valid(c) {
			d.errorf(fmt.Sprintf("%s[%d]", path, i), ErrCountry, "%q: want %s", s, want)
			continue
		}
		out = append(out, c)
	}
	return out
}

// isCountryCode checks the form only; the country data says whether the
// code exists (Compile reports those it does not know).
func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func isContinent(s string) bool {
	switch s {
	case "AF", "AN", "AS", "EU", "NA", "OC", "SA":
		return true
	}
	return false
}

func (d *loader) readList(file, path string) cidr.Set {
	if d.fsys == nil {
		d.errorf(path, ErrSyntax, "list %q: no directory to read lists from", file)
		return cidr.Set{}
	}
	data, err := fs.ReadFile(d.fsys, filepath.ToSlash(file))
	if err != nil {
		d.errorf(path, ErrUndefined, "list %q: %v", file, err)
		return cidr.Set{}
	}
	s, err := cidr.ParseList(file, bytes.NewReader(data), cidr.ParseOptions{})
	if err != nil {
		d.errorf(path, ErrSyntax, "list %v", err)
	}
	return s
}

func (d *loader) rule(n *yaml.Node, path string) PolicyRule {
	var r PolicyRule
	split := false
	d.fields(n, path, []string{"name", "from", "entry_points", "ports", "to", "split", "weights", "by", "seed", "rotate", "comment"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "name":
			r.Name = d.name(v, path)
		case "from":
			s, ok := d.str(v, path)
			if !ok {
				return
			}
			f := strings.Fields(s)
			if len(f) == 2 && f[0] == "not" {
				r.Not, f = true, f[1:]
			}
			if len(f) != 1 || !validName(f[0]) {
				d.errorf(path, ErrSyntax, "%q: want a group name, or \"not\" and a group name", s)
				return
			}
			r.From = f[0]
		case "entry_points":
			r.EntryPoints = d.list(v, path)
		case "ports":
			r.Ports = d.ports(v, path)
		case "to", "split":
			if r.To != nil {
				d.errorf(path, ErrSyntax, "give either to or split, not both")
				return
			}
			if key == "to" {
				s, _ := d.str(v, path)
				r.To = []string{s}
			} else {
				split = true
				r.To = d.list(v, path)
				if len(r.To) == 0 {
					d.errorf(path, ErrSyntax, "empty pool")
				}
			}
		case "weights":
			for i, s := range d.list(v, path) {
				w, err := strconv.Atoi(s)
				if err != nil || w < 1 || w > 1<<20 {
					d.errorf(fmt.Sprintf("%s[%d]", path, i), ErrSyntax, "weight %q: want a whole number from 1 to %d", s, 1<<20)
				}
				r.Weights = append(r.Weights, w)
			}
		case "by":
			switch s, _ := d.str(v, path); s {
			case "range":
				r.Split = SplitRange
			case "hash":
				r.Split = SplitHash
			default:
				d.errorf(path, ErrSyntax, "%q: want range or hash", s)
			}
		case "seed":
			r.Seed = uint32(d.integer(v, path, 0, 1<<32-1))
		case "rotate":
			r.NoRotate = !d.boolean(v, path)
		case "comment":
			r.Comment, _ = d.str(v, path)
		}
	})
	if r.Name == "" {
		d.errorf(path, ErrSyntax, "rule without a name")
	}
	if r.To == nil {
		d.errorf(path, ErrSyntax, "rule %s: give to (a target) or split (a pool)", r.Name)
	}
	if !split && (r.Weights != nil || r.Split != SplitRange) {
		d.errorf(path, ErrSyntax, "rule %s: weights and by need a split", r.Name)
	}
	return r
}

func (d *loader) override(n *yaml.Node, path string) Override {
	var o Override
	d.fields(n, path, []string{"group", "add", "remove", "reason", "expires"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "group":
			o.Group = d.name(v, path)
		case "add":
			o.Add = d.addrs(v, path)
		case "remove":
			o.Remove = d.addrs(v, path)
		case "reason":
			o.Reason, _ = d.str(v, path)
		case "expires":
			s, ok := d.str(v, path)
			if !ok {
				return
			}
			t, err := parseExpiry(s)
			if err != nil {
				d.errorf(path, ErrSyntax, "%q: want a date (2027-06-30) or an RFC 3339 time", s)
			}
			o.Expires = t
		}
	})
	if o.Group == "" {
		d.errorf(path, ErrSyntax, "override without a group")
	}
	if strings.TrimSpace(o.Reason) == "" {
		d.errorf(path, ErrSyntax, "override without a reason")
	}
	if o.Add.IsEmpty() && o.Remove.IsEmpty() {
		d.errorf(path, ErrSyntax, "override adds and removes nothing")
	}
	return o
}

// parseExpiry reads a date, meaning the end of that day in UTC, or an
// RFC 3339 time.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1), nil
	}
	return time.Parse(time.RFC3339, s)
}

func (d *loader) safety(n *yaml.Node, path string) Safety {
	var s Safety
	d.fields(n, path, []string{"min_entries", "max_shrink", "on_missing_data"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "min_entries":
			s.MinEntries = int(d.integer(v, path, 0, 1<<40))
		case "max_shrink":
			str, _ := d.str(v, path)
			pct := strings.HasSuffix(str, "%")
			f, err := strconv.ParseFloat(strings.TrimSuffix(str, "%"), 64)
			if pct {
				f /= 100
			}
			if err != nil || !(f >= 0 && f <= 1) {
				d.errorf(path, ErrSyntax, "%q: want a fraction from 0 to 1 or a percentage", str)
				return
			}
			s.MaxShrink = f
		case "on_missing_data":
			switch str, _ := d.str(v, path); str {
			case "error":
				s.OnMissingData = FailError
			case "normal":
				s.OnMissingData = FailNormal
			case "strict":
				s.OnMissingData = FailStrict
			default:
				d.errorf(path, ErrSyntax, "%q: want error, normal or strict", str)
			}
		}
	})
	return s
}
