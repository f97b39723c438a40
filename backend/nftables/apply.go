package nftables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/steer"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// Apply makes the kernel's table equal the plan, in one netlink
// transaction, and reads it back to check. See the package documentation
// for what is sent. The report counts ranges (set elements as the plan
// has them) and rules, and its Changes end with the transaction's size.
func (b *Backend) Apply(ctx context.Context, p *steer.Plan, opts backend.ApplyOptions) (backend.Report, error) {
	rep := backend.Report{DryRun: opts.DryRun}
	if err := checkPlan(p); err != nil {
		return rep, err
	}
	log := b.log()
	l := layoutOf(p)
	total := l.numRanges()
	progress := func(done int) {
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}

	var bufs sockBufs
	cc, err := nftables.New(b.connOpts(ctx, &bufs)...)
	if err != nil {
		return rep, fmt.Errorf("nftables: %w", err)
	}
	t0 := time.Now()
	st, err := readState(ctx, cc, b.table(), nil)
	if err != nil {
		return rep, err
	}
	tRead := time.Since(t0)

	t1 := time.Now()
	tx := &txn{cc: cc, table: &nftables.Table{Name: b.table(), Family: nftables.TableFamilyINet}, progress: progress}
	if err := tx.build(l, st); err != nil {
		return rep, err
	}
	rep.ElementsAdded, rep.ElementsRemoved, rep.RulesChanged = tx.added, tx.removed, tx.rulesChanged
	rep.Changes = tx.changes
	if tx.msgs > 0 {
		rep.Changes = append(rep.Changes, fmt.Sprintf("transaction: %d messages, %d bytes", tx.msgs+2, tx.bytes()))
	}
	tBuild := time.Since(t1)
	if opts.DryRun || tx.msgs == 0 {
		// Nothing queued is sent; a dry run leaves the queue to the GC.
		return rep, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	// The kernel takes the batch in one sendmsg and queues one ack per
	// message before we read any; size both buffers for that.
	bufs.snd = tx.bytes() + 64<<10
	bufs.rcv = tx.msgs*2048 + 256<<10
	if testHookBeforeFlush != nil {
		testHookBeforeFlush(cc, tx.table)
	}
	t2 := time.Now()
	if err := cc.Flush(); err != nil {
		return rep, fmt.Errorf("nftables: transaction on table inet %s (nothing changed): %w", b.table(), err)
	}
	tFlush := time.Since(t2)

	t3 := time.Now()
	if !b.SkipVerify {
		after, err := readState(ctx, cc, b.table(), nil)
		if err != nil {
			return rep, fmt.Errorf("nftables: verify: %w", err)
		}
		if err := verify(l, after); err != nil {
			return rep, fmt.Errorf("nftables: verify after apply: %w", err)
		}
	}
	log.Debug("nftables apply", "table", b.table(), "full", tx.full, "ranges", total,
		"added", tx.added, "removed", tx.removed, "rules_changed", tx.rulesChanged,
		"messages", tx.msgs+2, "bytes", tx.bytes(),
		"read", tRead, "build", tBuild, "flush", tFlush, "verify", time.Since(t3))
	return rep, nil
}

// Diff reports what Apply would change, without changing anything.
func (b *Backend) Diff(ctx context.Context, p *steer.Plan) (backend.Report, error) {
	return b.Apply(ctx, p, backend.ApplyOptions{DryRun: true})
}

// testHookBeforeFlush lets tests add a failing command to the transaction.
var testHookBeforeFlush func(cc *nftables.Conn, t *nftables.Table)

// sockBufs are the socket buffer sizes for the next dial, set before Flush.
type sockBufs struct{ snd, rcv int }

func (b *Backend) connOpts(ctx context.Context, bufs *sockBufs) []nftables.ConnOption {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		// Errors carry the kernel's message but not the (large) request.
		if err := c.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			if err := c.SetDeadline(dl); err != nil {
				return err
			}
		}
		// The FORCE variants exceed net.core.[rw]mem_max; they need
		// CAP_NET_ADMIN, which changing nftables needs anyway. Reads want a
		// large receive buffer too: dumps of large sets arrive faster than
		// they are parsed.
		err := setBuf(c, unix.SO_RCVBUFFORCE, max(bufs.rcv, 4<<20))
		if bufs.snd > 0 {
			err = errors.Join(err, setBuf(c, unix.SO_SNDBUFFORCE, bufs.snd))
		}
		return errors.Join(err, primeDump(c))
	})}
	if b.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(b.NetNS))
	}
	return opts
}

// primeDump makes the kernel send this socket's dumps in 32 KiB messages
// instead of 4 KiB ones. A dump of an interval set restarts the kernel's
// tree walk from the first element for every message (nft_rbtree_walk skips
// what was sent), so reading n elements costs n²/(elements per message):
// 13 s of mostly kernel time for 225,000 elements in 4 KiB messages. The
// kernel sizes dump messages by the largest buffer a recvmsg on the socket
// has offered (up to 32 KiB), and the netlink library offers one page; so
// ask for the ruleset generation and read the answer with a 64 KiB buffer.
func primeDump(c *netlink.Conn) error {
	if _, err := c.Send(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}); err != nil {
		return err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, _, _, rerr = unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	return errors.Join(err, rerr)
}

func setBuf(c *netlink.Conn, opt, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, n) }); err != nil {
		return err
	}
	return serr
}

// A txn queues one transaction on cc and counts what it sends.
type txn struct {
	cc       *nftables.Conn
	table    *nftables.Table
	progress func(done int)

	full                         bool
	msgs                         int // messages queued, batch begin/end not included
	elemBytes, otherBytes        int
	added, removed, rulesChanged int
	changes                      []string
	queued                       int // ranges queued, for progress
}

// bytes is the size of the batch: element messages counted exactly, the
// few others (table, chain, set, rule) estimated within some bytes each.
func (tx *txn) bytes() int { return tx.elemBytes + tx.otherBytes + 2*nlmHdr }

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
	if !st.exists || reason != "" {
		return tx.buildFull(l, st, reason)
	}
	return tx.buildIncremental(l, st)
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
	// Adding the table first makes the delete succeed when it is absent.
	tx.cc.AddTable(tx.table)
	tx.cc.DelTable(tx.table)
	tx.cc.AddTable(tx.table)
	tx.other(3, 0)
	sets := map[string]*nftables.Set{}
	for _, ks := range l.sets {
		s, err := tx.addSet(ks)
		if err != nil {
			return err
		}
		sets[ks.name] = s
	}
	ch := tx.addChain()
	for _, kr := range l.rules {
		if err := tx.addRule(ch, kr, sets); err != nil {
			return err
		}
	}
	tx.rulesChanged += len(l.rules)
	return nil
}

// buildIncremental queues element changes, new and stale sets, and the
// rules if they changed.
func (tx *txn) buildIncremental(l *layout, st *state) error {
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
		var delFirst *nftables.SetElement
		if old.zero && len(add) > 0 && add[0].From().IsUnspecified() {
			// A range starting at zero takes the place of the zero end.
			z := zeroEnd(ks.v6)
			delFirst = &z
		}
		if err := tx.elems(old.set, del, delFirst, false); err != nil {
			return err
		}
		if err := tx.elems(old.set, add, nil, true); err != nil {
			return err
		}
		if len(del)+len(add) > 0 {
			tx.changes = append(tx.changes, fmt.Sprintf("set %s: +%d -%d", ks.name, len(add), len(del)))
		}
		tx.added += len(add)
		tx.removed += len(del)
	}

	keys := make([][]byte, len(l.rules))
	for i, kr := range l.rules {
		k, err := ruleKey(ruleExprs(kr), ruleUserData(kr))
		if err != nil {
			return err
		}
		keys[i] = k
	}
	if !slices.EqualFunc(keys, st.rules, bytes.Equal) {
		tx.cc.FlushChain(st.chain)
		tx.other(1, 0)
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
		tx.cc.DelSet(s.set)
		tx.other(1, 0)
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
	if err := tx.cc.AddSet(s, nil); err != nil {
		return nil, fmt.Errorf("nftables: set %s: %w", ks.name, err)
	}
	tx.other(1, 0)
	var first *nftables.SetElement
	if needsZeroEnd(ks.ranges) {
		z := zeroEnd(ks.v6)
		first = &z
	}
	if err := tx.elems(s, ks.ranges, first, true); err != nil {
		return nil, err
	}
	tx.added += len(ks.ranges)
	if len(ks.ranges) > 0 {
		tx.changes = append(tx.changes, fmt.Sprintf("set %s: created (+%d)", ks.name, len(ks.ranges)))
	}
	return s, nil
}

// elems queues the elements of rs (after first, if any) for addition or
// deletion, one message per chunk.
func (tx *txn) elems(s *nftables.Set, rs []netipx.IPRange, first *nftables.SetElement, add bool) error {
	for _, chunk := range chunkElems(rs, first) {
		var err error
		if add {
			err = tx.cc.SetAddElements(s, chunk)
		} else {
			err = tx.cc.SetDeleteElements(s, chunk)
		}
		if err != nil {
			return fmt.Errorf("nftables: set %s: %w", s.Name, err)
		}
		n := 0
		for _, e := range chunk {
			n += elemSize(e)
		}
		tx.msgs++
		tx.elemBytes += elemMsgSize(tx.table.Name, s.Name, n)
	}
	tx.queued += len(rs)
	if tx.progress != nil {
		tx.progress(tx.queued)
	}
	return nil
}

func (tx *txn) addChain() *nftables.Chain {
	c := tx.cc.AddChain(&nftables.Chain{
		Name:     chainName,
		Table:    tx.table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityNATDest,
		Policy:   ptr(nftables.ChainPolicyAccept),
	})
	tx.other(1, 0)
	return c
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
	tx.cc.AddRule(&nftables.Rule{Table: tx.table, Chain: ch, Exprs: es, UserData: ruleUserData(kr)})
	tx.other(1, len(k))
	return nil
}

// other counts n messages other than element lists, of about extra bytes
// beyond their headers (table, chain and set messages are small).
func (tx *txn) other(n, extra int) {
	tx.msgs += n
	tx.otherBytes += n*(nlmHdr+64) + extra
}

func ptr[T any](v T) *T { return &v }

// verify checks that the table read back holds what the layout wants.
func verify(l *layout, st *state) error {
	if !st.exists {
		return errors.New("table missing")
	}
	if st.foreign != "" {
		return errors.New(st.foreign)
	}
	if len(st.sets) != len(l.sets) {
		return fmt.Errorf("%d sets, want %d", len(st.sets), len(l.sets))
	}
	for _, ks := range l.sets {
		s := st.sets[ks.name]
		if s == nil {
			return fmt.Errorf("set %s missing", ks.name)
		}
		if !slices.Equal(s.ranges, ks.ranges) {
			del, add := diffRanges(s.ranges, ks.ranges)
			return fmt.Errorf("set %s: %d ranges differ from the plan (%d missing, %d extra)", ks.name, len(del)+len(add), len(add), len(del))
		}
	}
	if len(st.rules) != len(l.rules) {
		return fmt.Errorf("%d rules, want %d", len(st.rules), len(l.rules))
	}
	for i, kr := range l.rules {
		k, err := ruleKey(ruleExprs(kr), ruleUserData(kr))
		if err != nil {
			return err
		}
		if !bytes.Equal(k, st.rules[i]) {
			return fmt.Errorf("rule %d (%s) differs from the plan", i, kr.r.Name)
		}
	}
	return nil
}
