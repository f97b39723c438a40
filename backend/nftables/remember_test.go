package nftables

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/geosteer/geosteer/steer"
	"github.com/google/nftables"
	"go4.org/netipx"
)

// sameAsNftF fails unless the table in ns lists exactly as nft -f of the
// plan's rendering lists in a fresh namespace.
func sameAsNftF(t *testing.T, ns *netNS, p *steer.Plan, what string) {
	t.Helper()
	ref := newNS(t, "ref")
	var sb strings.Builder
	if err := (&Backend{}).Render(&sb, p); err != nil {
		t.Fatal(err)
	}
	ref.exec(t, sb.String(), "nft", "-f", "-")
	if !reflect.DeepEqual(listJSON(t, ns, DefaultTable), listJSON(t, ref, DefaultTable)) {
		t.Errorf("%s: the table differs from nft -f of the plan", what)
	}
}

// apply applies p and checks how the Backend learnt the table's state.
func apply(t *testing.T, be *Backend, p *steer.Plan, wantBase, what string) backend.Report {
	t.Helper()
	rep, err := be.Apply(ctxT(t), p, backend.ApplyOptions{})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if be.lastBase != wantBase {
		t.Errorf("%s: state %s, want %s", what, be.lastBase, wantBase)
	}
	if len(rep.Changes) > 0 && strings.HasPrefix(rep.Changes[0], "table") && wantBase == "recorded" {
		t.Errorf("%s: full replace from a recorded state: %v", what, rep.Changes)
	}
	return rep
}

// TestApplyRemembers: a Backend diffs against what it applied while the
// ruleset generation is unchanged, in every Verify mode, and the result is
// nft -f's.
func TestApplyRemembers(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	e1 := englishTest(t)
	p1, p2 := testPlan(t, e1), testPlan(t, modify(t, e1))
	for _, mode := range []Verify{VerifyGeneration, VerifyFull, VerifyNone} {
		a := newNS(t, "m")
		be := &Backend{NetNS: a.fd, Verify: mode}
		apply(t, be, p1, "read back", "first")
		rep := apply(t, be, p2, "recorded", "second")
		if rep.ElementsAdded == 0 || rep.ElementsRemoved == 0 {
			t.Errorf("mode %d: second apply: %+v", mode, rep)
		}
		sameAsNftF(t, a, p2, "second")
		if rep := apply(t, be, p2, "recorded", "third"); rep.Changed() {
			t.Errorf("mode %d: third apply changed %v", mode, rep.Changes)
		}
		dry, err := be.Diff(ctxT(t), p1)
		if err != nil || be.lastBase != "recorded" || dry.ElementsAdded != rep.ElementsRemoved && dry.ElementsAdded == 0 {
			t.Errorf("mode %d: diff: %+v %v (%s)", mode, dry, err, be.lastBase)
		}
		apply(t, be, p1, "recorded", "back")
		sameAsNftF(t, a, p1, "back")
	}
}

// TestApplyBehindOurBack: whatever another process commits between two
// applies, in the table or elsewhere, by nft or over netlink, makes the
// next apply read the table back and repair it.
func TestApplyBehindOurBack(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	p := testPlan(t, englishTest(t))
	netlinkEdit := func(f func(cc *nftables.Conn, s *nftables.Set) error) func(t *testing.T, ns *netNS) {
		return func(t *testing.T, ns *netNS) {
			cc, err := nftables.New(nftables.WithNetNSFd(ns.fd))
			if err != nil {
				t.Fatal(err)
			}
			s, err := cc.GetSetByName(&nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet}, "english_v6")
			if err != nil {
				t.Fatal(err)
			}
			if err := f(cc, s); err != nil {
				t.Fatal(err)
			}
			if err := cc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	nft := func(cmd string) func(t *testing.T, ns *netNS) {
		return func(t *testing.T, ns *netNS) { ns.exec(t, "", "nft", cmd) }
	}
	v6range := netipx.MustParseIPRange("fd00:1::-fd00:1:ffff:ffff:ffff:ffff:ffff:ffff")
	for _, c := range []struct {
		name    string
		edit    func(t *testing.T, ns *netNS)
		changed bool
	}{
		{"nft add element", nft("add element inet geosteer english_v4 { 10.200.0.0/16 }"), true},
		{"nft delete element", nft("delete element inet geosteer english_v4 { 10.1.0.0/16 }"), true},
		{"nft flush set", nft("flush set inet geosteer english_v4"), true},
		{"nft delete rule", nft("flush chain inet geosteer prerouting"), true},
		{"nft other table", nft("add table inet other"), false},
		{"netlink delete element", netlinkEdit(func(cc *nftables.Conn, s *nftables.Set) error {
			return cc.SetDeleteElements(s, rangeElems(nil, v6range))
		}), true},
		{"netlink add element", netlinkEdit(func(cc *nftables.Conn, s *nftables.Set) error {
			return cc.SetAddElements(s, rangeElems(nil, netipx.MustParseIPRange("fd00:9::-fd00:9::ff")))
		}), true},
		{"netlink other table", netlinkEdit(func(cc *nftables.Conn, s *nftables.Set) error {
			cc.AddTable(&nftables.Table{Name: "other2", Family: nftables.TableFamilyIPv4})
			return nil
		}), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newNS(t, "b")
			be := &Backend{NetNS: a.fd}
			apply(t, be, p, "read back", "first")
			apply(t, be, p, "recorded", "unchanged")
			c.edit(t, a)
			rep := apply(t, be, p, "read back", "after the edit")
			if rep.Changed() != c.changed {
				t.Errorf("after the edit: changed %v, want %v: %v", rep.Changed(), c.changed, rep.Changes)
			}
			t.Logf("repair: %v", rep.Changes)
			sameAsNftF(t, a, p, "repaired")
			if rep := apply(t, be, p, "recorded", "again"); rep.Changed() {
				t.Errorf("again: changed %v", rep.Changes)
			}
		})
	}
}

// TestApplyTwoBackends: two Backends on one table (as two processes, or
// one restarted) each notice the other's transactions.
func TestApplyTwoBackends(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	e1 := englishTest(t)
	p1, p2 := testPlan(t, e1), testPlan(t, modify(t, e1))
	a := newNS(t, "two")
	be1, be2 := &Backend{NetNS: a.fd}, &Backend{NetNS: a.fd}
	apply(t, be1, p1, "read back", "be1 first")
	if rep := apply(t, be2, p1, "read back", "be2 first"); rep.Changed() {
		t.Errorf("be2 first: changed %v", rep.Changes)
	}
	apply(t, be2, p2, "recorded", "be2 second")
	rep := apply(t, be1, p1, "read back", "be1 after be2")
	if !rep.Changed() {
		t.Error("be1 after be2: nothing changed: be1 diffed against its stale record")
	}
	sameAsNftF(t, a, p1, "be1 after be2")

	// A restarted process: a new Backend, same table.
	restarted := &Backend{NetNS: a.fd}
	if rep := apply(t, restarted, p1, "read back", "restarted"); rep.Changed() {
		t.Errorf("restarted: changed %v", rep.Changes)
	}
	apply(t, restarted, p2, "recorded", "restarted second")
	sameAsNftF(t, a, p2, "restarted second")

	// Another table in the same namespace, and the same table name in
	// another namespace, never share a record.
	be1.Table = "geosteer2"
	apply(t, be1, p1, "read back", "other table")
	b := newNS(t, "two-b")
	be1.Table, be1.NetNS = "", b.fd
	apply(t, be1, p1, "read back", "other namespace")
}

// TestApplyConcurrentCommit: a commit by another process between Apply's
// read and its transaction makes the kernel refuse the transaction (the
// generation in the batch is stale), and Apply starts over from a full
// read, repairing what the other process did.
func TestApplyConcurrentCommit(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	e1 := englishTest(t)
	p1, p2 := testPlan(t, e1), testPlan(t, modify(t, e1))
	a := newNS(t, "cc")
	be := &Backend{NetNS: a.fd}
	apply(t, be, p1, "read back", "first")

	calls := 0
	testHookBeforeFlush = func(*nftables.Conn, *nftables.Table) {
		calls++
		if calls == 1 {
			a.exec(t, "", "nft", "add element inet geosteer english_v4 { 10.200.0.0/16 }")
		}
	}
	defer func() { testHookBeforeFlush = nil }()
	rep := apply(t, be, p2, "read back", "with a concurrent commit")
	if calls != 2 {
		t.Errorf("%d transactions sent, want 2 (refused, then again)", calls)
	}
	t.Logf("%v", rep.Changes)
	sameAsNftF(t, a, p2, "with a concurrent commit")

	// The kernel refuses a stale generation outright.
	nc, err := be.dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	gen, err := getGen(nc)
	if err != nil {
		t.Fatal(err)
	}
	l := layoutOf(p1)
	tx := newTxn(DefaultTable, l, nil)
	if err := tx.build(l, &state{}); err != nil {
		t.Fatal(err)
	}
	a.exec(t, "", "nft", "add table inet other")
	before := listJSON(t, a, DefaultTable)
	if err := tx.b.send(nc, gen); !errors.Is(err, errGenChanged) {
		t.Fatalf("send at a stale generation: %v, want errGenChanged", err)
	}
	if !reflect.DeepEqual(before, listJSON(t, a, DefaultTable)) {
		t.Error("the refused transaction changed the table")
	}
}

// TestVerifyFallback: with VerifyGeneration, a commit by another process
// right after Apply's own makes it read the table back: an edit elsewhere
// passes, an edit of the table is an error, and the next apply repairs it.
func TestVerifyFallback(t *testing.T) {
	testenv.NeedCommand(t, "nft", "nftables")
	p := testPlan(t, englishTest(t))
	p2 := testPlan(t, modify(t, englishTest(t)))
	a := newNS(t, "vf")
	be := &Backend{NetNS: a.fd}
	apply(t, be, p, "read back", "first")
	defer func() { testHookAfterFlush = nil }()

	testHookAfterFlush = func() { a.exec(t, "", "nft", "add table inet other") }
	apply(t, be, p2, "recorded", "other table edited after our commit")
	testHookAfterFlush = func() { a.exec(t, "", "nft", "add element inet geosteer english_v4 { 10.200.0.0/16 }") }
	if _, err := be.Apply(ctxT(t), p, backend.ApplyOptions{}); err == nil {
		t.Error("table edited after our commit: no verify error")
	} else {
		t.Log(err)
	}
	testHookAfterFlush = nil
	if rep := apply(t, be, p, "read back", "repair"); rep.ElementsRemoved == 0 {
		t.Errorf("repair: %v", rep.Changes)
	}
	sameAsNftF(t, a, p, "repaired")
}
