package cidr

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts ParseOptions
		want string // the set, or "" when an error is expected
		errs []string
	}{
		{"empty", "", ParseOptions{}, "{}", nil},
		{"blanks and comments", "\n  # a comment\n\t\n", ParseOptions{}, "{}", nil},
		{"forms", "192.0.2.0/24\n198.51.100.7\n203.0.113.10-203.0.113.20\n2001:db8::/32\n", ParseOptions{},
			"{192.0.2.0/24, 198.51.100.7, 203.0.113.10-203.0.113.20, 2001:db8::/32}", nil},
		{"trailing comment and CRLF", "10.0.0.0/8 # office\r\n  10.1.0.0/16\t#dup\r\n", ParseOptions{}, "{10.0.0.0/8}", nil},
		{"range with blanks", "10.0.0.1 - 10.0.0.2", ParseOptions{}, "{10.0.0.1-10.0.0.2}", nil},
		{"merge adjacent", "10.0.0.0/25\n10.0.0.128/25", ParseOptions{}, "{10.0.0.0/24}", nil},
		{"mapped", "::ffff:10.0.0.0/104", ParseOptions{}, "{10.0.0.0/8}", nil},
		{"host bits", "10.1.2.3/8", ParseOptions{}, "", []string{`<input>:1: "10.1.2.3/8": prefix has host bits set (did you mean 10.0.0.0/8?)`}},
		{"host bits masked", "10.1.2.3/8", ParseOptions{MaskHostBits: true}, "{10.0.0.0/8}", nil},
		{"bad lines keep line numbers", "10.0.0.0/8\nnot-an-ip\n\n300.1.1.1\n10.0.0.2-10.0.0.1\nfe80::1%eth0\n::1-10.0.0.1\n1.2.3.0/33", ParseOptions{}, "", []string{
			`<input>:2: "not-an-ip"`, `<input>:4: "300.1.1.1"`, `<input>:5: "10.0.0.2-10.0.0.1": range`,
			`<input>:6: "fe80::1%eth0": address has a zone`, `<input>:7: "::1-10.0.0.1": range`, `<input>:8: "1.2.3.0/33"`}},
		{"two entries on a line", "10.0.0.1 10.0.0.2", ParseOptions{}, "", []string{`<input>:1:`}},
		{"max errors", "x\nx\nx\nx", ParseOptions{MaxErrors: 2}, "", []string{`<input>:1:`, `<input>:2:`, "too many errors, stopped at line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseList("", strings.NewReader(tt.in), tt.opts)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if s.String() != tt.want {
					t.Fatalf("got %v, want %v", s, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got set %v", s)
			}
			if !s.IsEmpty() {
				t.Fatalf("a failed parse returned data: %v", s)
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q lacks %q", err, e)
				}
			}
		})
	}
}

func TestParseErrorType(t *testing.T) {
	_, err := ParseList("list.txt", strings.NewReader("ok\n10.1.2.3/8"), ParseOptions{})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != "list.txt" || pe.Line != 1 || pe.Text != "ok" || !errors.Is(err, ErrSyntax) {
		t.Fatalf("got %#v", pe)
	}
	if !errors.Is(err, ErrHostBits) {
		t.Fatalf("second error not wrapped: %v", err)
	}
}

func TestReadListLeavesBuilderOnError(t *testing.T) {
	var b Builder
	b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24"))
	if err := b.ReadList("x", strings.NewReader("10.0.0.0/8\nbad"), ParseOptions{}); err == nil {
		t.Fatal("want error")
	}
	if err := b.ReadList("y", strings.NewReader("10.0.0.0/8"), ParseOptions{}); err != nil {
		t.Fatal(err)
	}
	s, _ := b.Set()
	if s.String() != "{10.0.0.0/8, 192.0.2.0/24}" {
		t.Fatalf("got %v", s)
	}
}

func TestWriteListRoundTrip(t *testing.T) {
	in := "10.0.0.0/8\n192.0.2.1\n198.51.100.0-198.51.100.6\n2001:db8::/48\n"
	s, err := ParseList("", strings.NewReader(in), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var w strings.Builder
	if err := s.WriteList(&w); err != nil {
		t.Fatal(err)
	}
	want := "10.0.0.0/8\n192.0.2.1/32\n198.51.100.0/30\n198.51.100.4/31\n198.51.100.6/32\n2001:db8::/48\n"
	if w.String() != want {
		t.Fatalf("got\n%s", w.String())
	}
	s2, err := ParseList("", strings.NewReader(w.String()), ParseOptions{})
	if err != nil || !s2.Equal(s) {
		t.Fatalf("round trip: %v %v", s2, err)
	}
}

// FuzzParseList: any input either parses or fails with ParseErrors, never
// panics; a successful parse round-trips through WriteList.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8\n", "192.0.2.1-192.0.2.9 # x\r\n", "::ffff:1.2.3.4/128", "2001:db8::/32\n\n#c",
		"1.2.3.4/8", "a-b-c", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0/0\n::/0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseList("fuzz", strings.NewReader(in), ParseOptions{MaxErrors: 3})
		if err != nil {
			if !s.IsEmpty() {
				t.Fatal("data returned with an error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a ParseError: %v", err)
			}
			return
		}
		var w strings.Builder
		if err := s.WriteList(&w); err != nil {
			t.Fatal(err)
		}
		s2, err := ParseList("", strings.NewReader(w.String()), ParseOptions{})
		if err != nil || !s2.Equal(s) {
			t.Fatalf("round trip of %q: %v, %v", in, s2, err)
		}
	})
}

// FuzzParse4 checks the IPv4 fast path against netip's parser: whatever it
// accepts, netip accepts with the same meaning.
func FuzzParse4(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "10.0.0.0/8", "01.2.3.4", "1.2.3.4/08", "255.255.255.255/32 # x", "1.2.3.4/33", "0.0.0.0/0\r", "1.2.3", "1.2.3.4.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, l string) {
		a, n, ok := parse4(l)
		if !ok {
			return
		}
		entry := l
		if i := strings.IndexByte(entry, '#'); i >= 0 {
			entry = entry[:i]
		}
		entry = strings.TrimRight(entry, " \t\r")
		var p netip.Prefix
		var err error
		if strings.Contains(entry, "/") {
			p, err = netip.ParsePrefix(entry)
		} else {
			var addr netip.Addr
			addr, err = netip.ParseAddr(entry)
			p = netip.PrefixFrom(addr, 32)
		}
		if err != nil || !p.Addr().Is4() || p.Bits() != n || from4(p.Addr()) != a {
			t.Fatalf("parse4(%q) = %v/%d, netip: %v %v", l, a.addr(), n, p, err)
		}
	})
}
