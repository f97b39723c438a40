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
	"github.com/geosteer/geosteer/internal/testenv"
	"github.com/geosteer/geosteer/steer"
	"github.com/google/nftables"
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
		"test":     func() *steer.Plan { return testPlan(t, englishTest(t)) },
		"edges":    func() *steer.Plan { return testPlan(t, englishTest(t, "255.255.255.0/24", "ffff::/16", "0.0.0.0/8", "::/8")) },
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
