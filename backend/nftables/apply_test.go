package nftables

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/cidr"
	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/geosteer/geosteer/steer"
	"github.com/google/nftables"
	"go4.org/netipx"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// listJSON is nft -j list table, with handles (which differ between two
// namespaces) and the version header dropped.
func listJSON(t testing.TB, ns *netNS, table string) any {
	t.Helper()
	out := ns.exec(t, "", "nft", "-j", "list", "table", "inet", table)
	var v map[string][]map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("nft -j output: %v", err)
	}
	var objs []map[string]any
	for _, o := range v["nftables"] {
		if _, ok := o["metainfo"]; ok {
			continue
		}
		for _, body := range o {
			if m, ok := body.(map[string]any); ok {
				delete(m, "handle")
			}
		}
		objs = append(objs, o)
	}
	return objs
}

// TestApplyEqualsNftF applies a plan over netlink in one namespace and
// loads the rendered script with nft -f in another: nft must list the same
// table, and the kernel must hold the same elements and rule bytecode.
func TestApplyEqualsNftF(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	ctx := ctxT(t)
	plans := map[string]func() *steer.Plan{
		"test": func() *steer.Plan { return testPlan(t, englishTest(t)) },
		"edges": func() *steer.Plan {
			return testPlan(t, englishTest(t, "255.255.255.0/24", "ffff::/16", "0.0.0.0/8", "::/8"))
		},
		"emptyset": func() *steer.Plan { return testPlan(t, englishTest(t).Difference(englishTest(t))) },
	}
	for name, mk := range plans {
		t.Run(name, func(t *testing.T) {
			p := mk()
			a, b := newNS(t, "a"), newNS(t, "b")
			be := &Backend{NetNS: a.fd}
			rep, err := be.Apply(ctx, p, backend.ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report: %+v", rep)
			var sb strings.Builder
			if err := be.Render(&sb, p); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "plan.nft")
			os.WriteFile(file, []byte(sb.String()), 0o644)
			b.exec(t, "", "nft", "-f", file)

			ja, jb := listJSON(t, a, DefaultTable), listJSON(t, b, DefaultTable)
			if !reflect.DeepEqual(ja, jb) {
				x, _ := json.MarshalIndent(ja, "", " ")
				y, _ := json.MarshalIndent(jb, "", " ")
				t.Errorf("nft -j list differs:\nnetlink: %s\nnft -f:  %s", x, y)
			}
			sa, sb2 := rawState(t, a), rawState(t, b)
			if !reflect.DeepEqual(sa, sb2) {
				t.Errorf("kernel contents differ:\nnetlink: %v\nnft -f:  %v", sa, sb2)
			}
		})
	}
}

// rawState is the table as raw element lists and rule bytecode.
func rawState(t testing.TB, ns *netNS) map[string]any {
	t.Helper()
	cc, err := nftables.New(nftables.WithNetNSFd(ns.fd))
	if err != nil {
		t.Fatal(err)
	}
	tb := &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet}
	out := map[string]any{}
	sets, err := cc.GetSets(tb)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sets {
		es, err := cc.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, e := range es {
			a, _ := netip.AddrFromSlice(e.Key)
			k := a.String()
			if e.IntervalEnd {
				k += "/end"
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out["set "+s.Name] = keys
		out["set "+s.Name+" comment"] = s.Comment
	}
	st, err := readState(context.Background(), cc, DefaultTable, nil)
	if err != nil {
		t.Fatal(err)
	}
	out["rules"] = st.rules
	out["foreign"] = st.foreign
	return out
}

// modify returns s with some ranges removed, some shrunk or extended and
// some added: a database update in miniature.
func modify(t testing.TB, s cidr.Set) cidr.Set {
	var b cidr.Builder
	b.AddSet(s)
	b.RemovePrefix(netip.MustParsePrefix("10.1.128.0/17"))     // shrink
	b.AddRange(netipx.MustParseIPRange("10.3.8.0-10.3.8.255")) // extend the end
	b.RemovePrefix(netip.MustParsePrefix("192.0.2.128/25"))    // drop
	b.AddPrefix(netip.MustParsePrefix("198.19.0.0/24"))        // new
	b.AddPrefix(netip.MustParsePrefix("2001:db8:2::/48"))      // join two ranges... not adjacent: new
	b.RemovePrefix(netip.MustParsePrefix("fd00:1:8000::/33"))  // shrink
	b.AddRange(netipx.MustParseIPRange("fd00:0:ffff::-fd00:0:ffff::ff"))
	out, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestApplyIncremental walks a table through plan changes and checks each
// report, that a repeated apply changes nothing, and that the result equals
// a fresh nft -f of the same plan.
func TestApplyIncremental(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	ctx := ctxT(t)
	a := newNS(t, "i")
	be := &Backend{NetNS: a.fd}
	e1 := englishTest(t)
	e2 := modify(t, e1)
	p1, p2 := testPlan(t, e1), testPlan(t, e2)

	p3 := testPlan(t, e2) // rules moved and one dropped
	p3.Rules = append(p3.Rules[1:len(p3.Rules)-1:len(p3.Rules)-1], p3.Rules[0])

	p4 := testPlan(t, e2) // an extra set, used by a rule
	p4.Sets = append(p4.Sets, steer.Set{Name: "trusted", Addrs: englishTest(t, "198.18.200.0/24").Intersect(e1)})
	p4.Rules[len(p4.Rules)-1].SrcSet = "trusted"

	steps := []struct {
		name            string
		p               *steer.Plan
		add, del, rules int
		full            bool
	}{
		{"first", p1, e1.NumRanges(), 0, len(p1.Rules), true},
		{"same", p1, 0, 0, 0, false},
		{"modified", p2, -1, -1, 0, false},
		{"same again", p2, 0, 0, 0, false},
		{"rules", p3, 0, 0, len(p2.Rules), false},
		{"new set", p4, -1, 0, -1, false},
		{"set gone", p1, -1, -1, -1, false},
	}
	for _, st := range steps {
		dry, err := be.Apply(ctx, st.p, backend.ApplyOptions{DryRun: true})
		if err != nil {
			t.Fatalf("%s: dry run: %v", st.name, err)
		}
		rep, err := be.Apply(ctx, st.p, backend.ApplyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		t.Logf("%s: %+v", st.name, rep)
		if !slices.Equal(dry.Changes, rep.Changes) || dry.ElementsAdded != rep.ElementsAdded || dry.ElementsRemoved != rep.ElementsRemoved {
			t.Errorf("%s: dry run said %+v, apply did %+v", st.name, dry, rep)
		}
		if (st.add >= 0 && rep.ElementsAdded != st.add) || (st.del >= 0 && rep.ElementsRemoved != st.del) || (st.rules >= 0 && rep.RulesChanged != st.rules) {
			t.Errorf("%s: report %+v, want +%d -%d rules %d", st.name, rep, st.add, st.del, st.rules)
		}
		if st.add < 0 && rep.ElementsAdded == 0 || st.del < 0 && rep.ElementsRemoved == 0 {
			t.Errorf("%s: report %+v, want elements changed", st.name, rep)
		}
		full := len(rep.Changes) > 0 && strings.HasPrefix(rep.Changes[0], "table")
		if full != st.full {
			t.Errorf("%s: full replace = %v, want %v (%v)", st.name, full, st.full, rep.Changes)
		}
		if rep.Changed() == (st.add == 0 && st.del == 0 && st.rules == 0) {
			t.Errorf("%s: Changed() = %v", st.name, rep.Changed())
		}
		// The same as nft -f of the plan in a fresh namespace.
		ref := newNS(t, "r")
		var sb strings.Builder
		be.Render(&sb, st.p)
		ref.exec(t, sb.String(), "nft", "-f", "-")
		if ja, jr := listJSON(t, a, DefaultTable), listJSON(t, ref, DefaultTable); !reflect.DeepEqual(ja, jr) {
			t.Errorf("%s: nft -j list differs from nft -f of the plan", st.name)
		}
	}
}

// TestApplyForeign: a table edited by hand is replaced whole, with the
// reason in the report.
func TestApplyForeign(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	ctx := ctxT(t)
	a := newNS(t, "f")
	be := &Backend{NetNS: a.fd}
	p := testPlan(t, englishTest(t))
	if _, err := be.Apply(ctx, p, backend.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []string{
		"add chain inet geosteer extra",
		"add set inet geosteer english_v4x { type ipv4_addr; }",
		"add element inet geosteer english_v4 { 10.200.0.0/16 }",
		"insert rule inet geosteer prerouting tcp dport 26 accept",
	} {
		a.exec(t, "", "nft", edit)
		rep, err := be.Apply(ctx, p, backend.ApplyOptions{})
		if err != nil {
			t.Fatalf("after %q: %v", edit, err)
		}
		if !rep.Changed() {
			t.Errorf("after %q: nothing changed: %+v", edit, rep)
		}
		t.Logf("after %q: %v", edit, rep.Changes)
		if rep, _ := be.Apply(ctx, p, backend.ApplyOptions{}); rep.Changed() {
			t.Errorf("after %q: second apply changed %v", edit, rep.Changes)
		}
	}
}

// TestApplyAtomic makes the kernel refuse the transaction (a command
// deleting a set that does not exist, added at the end) and checks that the
// table is exactly as before, for a first apply, a full replace and an
// incremental one.
func TestApplyAtomic(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	ctx := ctxT(t)
	a := newNS(t, "x")
	be := &Backend{NetNS: a.fd}
	p1, p2 := testPlan(t, englishTest(t)), testPlan(t, modify(t, englishTest(t)))
	fail := func(cc *nftables.Conn, tb *nftables.Table) { cc.DelSet(&nftables.Set{Table: tb, Name: "no-such-set"}) }

	testHookBeforeFlush = fail
	_, err := be.Apply(ctx, p1, backend.ApplyOptions{})
	testHookBeforeFlush = nil
	if err == nil {
		t.Fatal("first apply: no error from a failing transaction")
	}
	t.Log(err)
	if out := a.exec(t, "", "nft", "list", "ruleset"); out != "" {
		t.Fatalf("failed first apply left:\n%s", out)
	}

	if _, err := be.Apply(ctx, p1, backend.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := listJSON(t, a, DefaultTable)
	for _, mode := range []string{"incremental", "full"} {
		if mode == "full" {
			a.exec(t, "", "nft", "add chain inet geosteer extra")
			before = listJSON(t, a, DefaultTable)
		}
		testHookBeforeFlush = fail
		_, err := be.Apply(ctx, p2, backend.ApplyOptions{})
		testHookBeforeFlush = nil
		if err == nil {
			t.Fatalf("%s: no error from a failing transaction", mode)
		}
		if after := listJSON(t, a, DefaultTable); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: failed apply changed the table", mode)
		}
	}
}
