package routeros

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/steer"
)

// A Script renders plans as RouterOS scripts (.rsc) for /import; it
// implements [backend.Renderer]. The zero value renders one file with the
// default names.
//
// A script loads each set into a new list generation named after a hash
// of its content, one "add" per line wrapped in ":do { } on-error={}" so
// that entries already present do not abort the import; then a cut-over
// part checks that every list is complete (or stops with :error before
// changing anything), adds or updates the managed NAT rules by their
// comment (new rules placed before the next one in plan order, then
// moved into order), which repoints each rule to its new list in one
// "set", removes managed rules the plan dropped, and last removes the
// managed entries of every older generation. Entries and rules without
// the tag are never touched, and importing the same script again changes
// nothing.
type Script struct {
	Names
	// Timeout, if positive, gives every entry a timeout (RAM-only
	// entries). The generation then also hashes the render time, so that
	// each new render loads fresh entries: re-import a new render more
	// often than Timeout.
	Timeout time.Duration
	// MaxFileSize, if positive, bounds each file [Script.Files] returns.
	MaxFileSize int
	// Now is the render time for Timeout generations; default time.Now.
	Now func() time.Time
}

var _ backend.Renderer = (*Script)(nil)

// A File is one part of a rendered script.
type File struct {
	Name string
	Data []byte
}

// Render writes the whole script as one file.
func (s *Script) Render(w io.Writer, p *steer.Plan) error {
	c := *s
	c.MaxFileSize = 0
	files, err := c.Files(p)
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, err := w.Write(f.Data); err != nil {
			return err
		}
	}
	return nil
}

// Files renders the script as files of at most MaxFileSize bytes, to
// import in order: the list files (geosteer-lists-NNN.rsc), each adding
// entries to lists no rule uses yet, and the cut-over file
// (geosteer-cutover.rsc), which refuses to run until the lists are
// complete. So each file is safe to import on its own.
func (s *Script) Files(p *steer.Plan) ([]File, error) {
	n, err := s.Names.withDefaults()
	if err != nil {
		return nil, err
	}
	d, err := compile(p, n)
	if err != nil {
		return nil, err
	}
	timeout := ""
	if s.Timeout > 0 {
		timeout = " timeout=" + fmtDuration(s.Timeout)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	targets := map[listKey]string{}
	for _, dl := range d.lists {
		h := sha256.New()
		for r := range dl.all() {
			io.WriteString(h, entryAddress(r))
			h.Write([]byte{0})
		}
		if s.Timeout > 0 {
			h.Write(binary.BigEndian.AppendUint64([]byte(timeout), uint64(now().UnixNano())))
		}
		targets[dl.key] = n.list(dl.key, "h"+hex.EncodeToString(h.Sum(nil))[:10])
	}

	var files []File
	var cur bytes.Buffer
	curMenu := ""
	header := func() {
		fmt.Fprintf(&cur, "# %s list part %d: adds entries to lists no rule uses yet; safe alone.\n", n.Tag, len(files)+1)
		curMenu = ""
	}
	flush := func() {
		files = append(files, File{Name: fmt.Sprintf("%s-lists-%03d.rsc", n.Tag, len(files)+1), Data: bytes.Clone(cur.Bytes())})
		cur.Reset()
	}
	header()
	var line []byte
	for _, dl := range d.lists {
		m := fmt.Sprintf("/%s firewall address-list\n", []string{"ip", "ipv6"}[famIndex(dl.key.fam)])
		for r := range dl.all() {
			line = fmt.Appendf(line[:0], ":do { add list=%s address=%s comment=%s%s } on-error={}\n",
				quote(targets[dl.key]), quote(entryAddress(r)), quote(n.Tag), timeout)
			need := len(line)
			if curMenu != m {
				need += len(m)
			}
			if s.MaxFileSize > 0 && cur.Len()+need > s.MaxFileSize && curMenu != "" {
				flush()
				header()
			}
			if curMenu != m {
				cur.WriteString(m)
				curMenu = m
			}
			if s.MaxFileSize > 0 && cur.Len()+len(line) > s.MaxFileSize {
				return nil, fmt.Errorf("routeros: MaxFileSize %d is too small for one entry", s.MaxFileSize)
			}
			cur.Write(line)
		}
	}
	if curMenu != "" {
		flush()
	}

	cur.Reset()
	cutover(&cur, n, d, targets)
	if s.MaxFileSize > 0 && cur.Len() > s.MaxFileSize {
		return nil, fmt.Errorf("routeros: the cut-over part needs %d bytes, over MaxFileSize %d", cur.Len(), s.MaxFileSize)
	}
	return append(files, File{Name: n.Tag + "-cutover.rsc", Data: bytes.Clone(cur.Bytes())}), nil
}

// cutover writes the part that checks the lists, brings the rules to the
// plan and removes old generations.
func cutover(b *bytes.Buffer, n Names, d *desired, targets map[listKey]string) {
	fmt.Fprintf(b, "# %s cut-over: import after the list files; stops before any change if a list is incomplete.\n", n.Tag)
	for fi := range 2 {
		menuLine := fmt.Sprintf("/%s firewall address-list\n", []string{"ip", "ipv6"}[fi])
		first := true
		for _, dl := range d.lists {
			if famIndex(dl.key.fam) != fi {
				continue
			}
			if first {
				b.WriteString(menuLine)
				first = false
			}
			name := targets[dl.key]
			fmt.Fprintf(b, ":if ([:len [find where list=%s and comment=%s]] < %d) do={ :error %s }\n",
				quote(name), quote(n.Tag), dl.n,
				quote(fmt.Sprintf("%s: list %s is incomplete (want %d entries): import its list files first", n.Tag, name, dl.n)))
		}
	}
	for fi := range 2 {
		rules := d.rules[fi]
		fam := []string{"ip", "ipv6"}[fi]
		fmt.Fprintf(b, "/%s firewall nat\n", fam)
		match := func(name string) string {
			return fmt.Sprintf("[find where comment~%s]", quote("^"+n.Tag+" "+reName(name)+"(:|$)"))
		}
		for i := len(rules) - 1; i >= 0; i-- {
			r := &rules[i]
			var fs strings.Builder
			has := map[string]bool{}
			for _, f := range r.allFields(targets[r.list]) {
				has[f.k] = true
				fmt.Fprintf(&fs, " %s=%s", f.k, quote(f.v))
			}
			var unset strings.Builder
			for _, k := range []string{"src-address", "src-address-list"} {
				if !has[k] {
					unset.WriteString(" !" + k)
				}
			}
			place, move := "", ""
			if i+1 < len(rules) {
				place = " place-before=" + match(rules[i+1].name)
				move = fmt.Sprintf("; move %s destination=%s", match(r.name), match(rules[i+1].name))
			}
			fmt.Fprintf(b, ":if ([:len %s] = 0) do={ add%s%s } else={ set %s%s disabled=no%s%s }\n",
				match(r.name), fs.String(), place, match(r.name), fs.String(), unset.String(), move)
		}
		names := make([]string, len(rules))
		for i, r := range rules {
			names[i] = reName(r.name)
		}
		keep := ""
		if len(names) > 0 {
			keep = fmt.Sprintf(" and !(comment~%s)", quote("^"+n.Tag+" ("+strings.Join(names, "|")+")(:|$)"))
		}
		fmt.Fprintf(b, "remove [find where comment~%s%s]\n", quote("^"+n.Tag+" "), keep)
	}
	for fi := range 2 {
		fmt.Fprintf(b, "/%s firewall address-list\n", []string{"ip", "ipv6"}[fi])
		fmt.Fprintf(b, "remove [find where comment=%s and list~%s", quote(n.Tag), quote("^"+n.ListPrefix+".*[.]v"+strconv.Itoa([]int{4, 6}[fi])+"[.]"))
		for _, dl := range d.lists {
			if famIndex(dl.key.fam) == fi {
				fmt.Fprintf(b, " and list!=%s", quote(targets[dl.key]))
			}
		}
		b.WriteString("]\n")
	}
}

// reName escapes a rule name ([a-z0-9_.-]) for a POSIX regular expression.
func reName(s string) string { return strings.ReplaceAll(s, ".", "[.]") }

// quote makes a RouterOS script string: \ " $ and ? are escaped (? would
// start console help), other bytes outside printable ASCII become \XX.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '"' || c == '$' || c == '?':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
