package nftables

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"go4.org/netipx"
)

// A txn builds one transaction from the layout wanted and the state the
// kernel holds, and knows the state the kernel will hold once it commits.
type txn struct {
	b        *batch
	table    *nftables.Table
	progress func(done int)

	full                         bool
	added, removed, rulesChanged int
	changes                      []string
	queued                       int // ranges queued, for progress
	after                        *state
}

func newTxn(table string, l *layout, progress func(int)) *txn {
	hint := 0
	for _, ks := range l.sets {
		hint += len(ks.ranges) * (7*nlaHdr + 2*keyLen(ks.v6) + 4)
	}
	return &txn{
		b:        newBatch(hint / 8), // incremental applies send little; append grows
		table:    &nftables.Table{Name: table, Family: nftables.TableFamilyINet},
		progress: progress,
	}
}

// empty reports whether the transaction changes nothing.
func (tx *txn) empty() bool { return tx.b.msgs() == 0 }

func (tx *txn) build(l *layout, st *state) error {
	reason := st.foreign
	if reason == "" && st.exists {
		for _, ks := range l.sets {
			// (google/nftables v0.3.0 does not read set comments back, so a
			// changed comment waits for the next full replace.)
			if s := st.sets[ks.name]; s != nil && s.v6 != ks.v6 {
				reason = fmt.Sprintf("set %s changed type", ks.name)
				break
			}
		}
	}
	var err error
	if !st.exists || reason != "" {
		err = tx.buildFull(l, st, reason)
	} else {
		err = tx.buildIncremental(l, st)
	}
	if err != nil {
		return err
	}
	return tx.b.drain()
}

// buildFull queues the replacement of the whole table.
func (tx *txn) buildFull(l *layout, st *state, reason string) error {
	tx.full = true
	if st.exists {
		tx.changes = append(tx.changes, fmt.Sprintf("table inet %s: replaced (%s)", tx.table.Name, reason))
		for _, s := range st.sets {
			tx.removed += len(s.ranges)
		}
		tx.rulesChanged += len(st.rules)
	} else {
		tx.changes = append(tx.changes, fmt.Sprintf("table inet %s: created", tx.table.Name))
	}
	tx.after = &state{exists: true, sets: map[string]*setState{}, table: tx.table}
	// The elements are nearly all of it: size the buffer once.
	n := 64 << 10
	for _, ks := range l.sets {
		elems := len(ks.ranges) * (7*nlaHdr + 2*keyLen(ks.v6) + 4)
		n += elems + (elems/maxElemList+1)*128
	}
	tx.b.buf = slices.Grow(tx.b.buf, n)
	// Adding the table first makes the delete succeed when it is absent.
	lib := tx.b.lib
	lib.AddTable(tx.table)
	lib.DelTable(tx.table)
	lib.AddTable(tx.table)
	sets := map[string]*nftables.Set{}
	for _, ks := range l.sets {
		s, err := tx.addSet(ks)
		if err != nil {
			return err
		}
		sets[ks.name] = s
	}
	tx.after.chain = tx.addChain()
	for _, kr := range l.rules {
		if err := tx.addRule(tx.after.chain, kr, sets); err != nil {
			return err
		}
	}
	tx.rulesChanged += len(l.rules)
	return nil
}

// buildIncremental queues element changes, new and stale sets, and the
// rules if they changed.
func (tx *txn) buildIncremental(l *layout, st *state) error {
	tx.after = &state{exists: true, sets: map[string]*setState{}, chain: st.chain, table: st.table}
	sets := map[string]*nftables.Set{}
	want := map[string]bool{}
	for _, ks := range l.sets {
		want[ks.name] = true
		old := st.sets[ks.name]
		if old == nil {
			s, err := tx.addSet(ks)
			if err != nil {
				return err
			}
			sets[ks.name] = s
			continue
		}
		sets[ks.name] = old.set
		del, add := diffRanges(old.ranges, ks.ranges)
		// A range starting at zero takes the place of the zero end.
		delZero := old.zero && len(add) > 0 && add[0].From().IsUnspecified()
		if err := tx.elems(old.set, old.v6, del, delZero, false); err != nil {
			return err
		}
		if err := tx.elems(old.set, old.v6, add, false, true); err != nil {
			return err
		}
		if len(del)+len(add) > 0 {
			tx.changes = append(tx.changes, fmt.Sprintf("set %s: +%d -%d", ks.name, len(add), len(del)))
		}
		tx.added += len(add)
		tx.removed += len(del)
		tx.after.sets[ks.name] = &setState{set: old.set, v6: ks.v6, ranges: ks.ranges, zero: old.zero && !delZero}
	}

	keys := make([][]byte, len(l.rules))
	for i, kr := range l.rules {
		k, err := ruleKey(ruleExprs(kr), ruleUserData(kr))
		if err != nil {
			return err
		}
		keys[i] = k
	}
	tx.after.rules = st.rules
	if !slices.EqualFunc(keys, st.rules, bytes.Equal) {
		tx.after.rules = nil
		tx.b.lib.FlushChain(st.chain)
		for _, kr := range l.rules {
			if err := tx.addRule(st.chain, kr, sets); err != nil {
				return err
			}
		}
		n := rulesChanged(keys, st.rules)
		tx.rulesChanged += n
		tx.changes = append(tx.changes, fmt.Sprintf("chain %s: %d rules replaced (%d differ)", chainName, len(l.rules), n))
	}

	// Stale sets go last: the old rules that used them are gone by now.
	names := make([]string, 0, len(st.sets))
	for name := range st.sets {
		if !want[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		s := st.sets[name]
		tx.b.lib.DelSet(s.set)
		tx.removed += len(s.ranges)
		tx.changes = append(tx.changes, fmt.Sprintf("set %s: deleted (-%d)", name, len(s.ranges)))
	}
	return nil
}

// rulesChanged counts the positions where two rule lists differ.
func rulesChanged(want, have [][]byte) int {
	n := 0
	for i := range max(len(want), len(have)) {
		if i >= len(want) || i >= len(have) || !bytes.Equal(want[i], have[i]) {
			n++
		}
	}
	return n
}

func (tx *txn) addSet(ks kset) (*nftables.Set, error) {
	s := &nftables.Set{
		Table:    tx.table,
		Name:     ks.name,
		KeyType:  nftables.TypeIPAddr,
		Interval: true,
		Comment:  ks.comment,
	}
	if ks.v6 {
		s.KeyType = nftables.TypeIP6Addr
	}
	if err := tx.b.lib.AddSet(s, nil); err != nil {
		return nil, fmt.Errorf("nftables: set %s: %w", ks.name, err)
	}
	zero := needsZeroEnd(ks.ranges)
	if err := tx.elems(s, ks.v6, ks.ranges, zero, true); err != nil {
		return nil, err
	}
	tx.added += len(ks.ranges)
	if len(ks.ranges) > 0 {
		tx.changes = append(tx.changes, fmt.Sprintf("set %s: created (+%d)", ks.name, len(ks.ranges)))
	}
	tx.after.sets[ks.name] = &setState{set: s, v6: ks.v6, ranges: ks.ranges, zero: zero}
	return s, nil
}

// elems queues the elements of rs (after the zero end element if
// zeroFirst) for addition or deletion.
func (tx *txn) elems(s *nftables.Set, v6 bool, rs []netipx.IPRange, zeroFirst, add bool) error {
	if len(rs) == 0 && !zeroFirst {
		return nil
	}
	if err := tx.b.drain(); err != nil { // the set's own message goes first
		return err
	}
	tx.b.putElems(tx.table.Name, s.Name, s.ID, v6, rs, zeroFirst, add)
	tx.queued += len(rs)
	if tx.progress != nil {
		tx.progress(tx.queued)
	}
	return nil
}

func (tx *txn) addChain() *nftables.Chain {
	return tx.b.lib.AddChain(&nftables.Chain{
		Name:     chainName,
		Table:    tx.table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityNATDest,
		Policy:   ptr(nftables.ChainPolicyAccept),
	})
}

func (tx *txn) addRule(ch *nftables.Chain, kr krule, sets map[string]*nftables.Set) error {
	es := ruleExprs(kr)
	if kr.set != "" {
		s := sets[kr.set]
		for _, e := range es {
			if lk, ok := e.(*expr.Lookup); ok {
				lk.SetID = s.ID
			}
		}
	}
	k, err := ruleKey(es, ruleUserData(kr))
	if err != nil {
		return fmt.Errorf("nftables: rule %s: %w", kr.r.Name, err)
	}
	tx.b.lib.AddRule(&nftables.Rule{Table: tx.table, Chain: ch, Exprs: es, UserData: ruleUserData(kr)})
	tx.after.rules = append(tx.after.rules, k)
	return nil
}

func ptr[T any](v T) *T { return &v }
