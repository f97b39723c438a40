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
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// maxAttempts bounds how often Apply starts over when another process
// commits a transaction between its reading the kernel's state and its own
// commit.
const maxAttempts = 3

// Apply makes the kernel's table equal the plan, in one netlink
// transaction, and checks the result as b.Verify says. See the package
// documentation for what is sent and what is read. The report counts
// ranges (set elements as the plan has them) and rules, and its Changes end
// with the transaction's size.
func (b *Backend) Apply(ctx context.Context, p *steer.Plan, opts backend.ApplyOptions) (backend.Report, error) {
	rep := backend.Report{DryRun: opts.DryRun}
	if err := checkPlan(p); err != nil {
		return rep, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	log := b.log()
	l := layoutOf(p)
	total := l.numRanges()
	progress := func(done int) {
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}

	nc, err := b.dial(ctx)
	if err != nil {
		return rep, fmt.Errorf("nftables: %w", err)
	}
	defer nc.Close()
	ns := netnsCookie(nc)

	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		gen, err := getGen(nc)
		if err != nil {
			return rep, err
		}
		st, base := b.recorded(ns, gen), "recorded"
		if st == nil {
			base = "read back"
			if st, err = b.readState(ctx); err != nil {
				return rep, err
			}
			// If the generation is still gen when the next Apply (or this
			// one's transaction) looks, the read saw exactly generation gen.
			b.remember(ns, gen, st)
		}
		b.lastBase = base
		tRead := time.Since(t0)

		t1 := time.Now()
		tx := newTxn(b.table(), l, progress)
		if err := tx.build(l, st); err != nil {
			return rep, err
		}
		rep = backend.Report{DryRun: opts.DryRun, ElementsAdded: tx.added, ElementsRemoved: tx.removed, RulesChanged: tx.rulesChanged, Changes: tx.changes}
		if !tx.empty() {
			rep.Changes = append(rep.Changes, fmt.Sprintf("transaction: %d messages, %d bytes", tx.b.msgs()+2, tx.b.size()))
		}
		tBuild := time.Since(t1)
		if opts.DryRun {
			return rep, ctx.Err()
		}
		if tx.empty() {
			b.remember(ns, gen, st) // the kernel holds the plan, at gen
			return rep, ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}

		if testHookBeforeFlush != nil {
			testHookBeforeFlush(tx.b.lib, tx.table)
			if err := tx.b.drain(); err != nil {
				return rep, err
			}
		}
		// The kernel takes the batch in one sendmsg (which fails beyond the
		// send buffer) and queues one answer per message before we read
		// any; size both buffers for that.
		err = errors.Join(setBuf(nc, unix.SO_SNDBUFFORCE, tx.b.size()+64<<10),
			setBuf(nc, unix.SO_RCVBUFFORCE, tx.b.acks*1024+256<<10))
		if err != nil {
			return rep, fmt.Errorf("nftables: socket buffers: %w", err)
		}
		t2 := time.Now()
		err = tx.b.send(nc, gen)
		tFlush := time.Since(t2)
		if errors.Is(err, errGenChanged) && attempt < maxAttempts {
			log.Debug("nftables: ruleset changed since it was read; starting over", "table", b.table(), "generation", gen, "attempt", attempt)
			b.rec = nil
			continue
		}
		if err != nil {
			b.rec = nil
			var lost *answerLostError
			if errors.As(err, &lost) {
				return rep, fmt.Errorf("nftables: transaction on table inet %s: %w", b.table(), err)
			}
			return rep, fmt.Errorf("nftables: transaction on table inet %s (nothing changed): %w", b.table(), err)
		}
		// Committed on top of generation gen: the kernel holds tx.after.
		b.remember(ns, nextGen(gen), tx.after)
		if testHookAfterFlush != nil {
			testHookAfterFlush()
		}

		t3 := time.Now()
		how, err := b.verify(ctx, nc, ns, l, nextGen(gen))
		if err != nil {
			b.rec = nil
			return rep, fmt.Errorf("nftables: verify after apply: %w", err)
		}
		log.Debug("nftables apply", "table", b.table(), "base", base, "generation", gen, "full", tx.full, "ranges", total,
			"added", tx.added, "removed", tx.removed, "rules_changed", tx.rulesChanged,
			"messages", tx.b.msgs()+2, "bytes", tx.b.size(),
			"read", tRead, "build", tBuild, "flush", tFlush, "verify", how, "verify_time", time.Since(t3))
		return rep, nil
	}
}

// verify checks the table after a transaction that made generation gen,
// as b.Verify says, and says how it checked.
func (b *Backend) verify(ctx context.Context, nc *netlink.Conn, ns uint64, l *layout, gen uint32) (string, error) {
	switch b.Verify {
	case VerifyNone:
		return "none", nil
	case VerifyGeneration:
		g, err := getGen(nc)
		if err != nil {
			return "", err
		}
		if g == gen {
			return "generation", nil
		}
		b.log().Debug("nftables: another transaction committed after ours; reading back", "table", b.table(), "ours", gen, "now", g)
	}
	g, err := getGen(nc)
	if err != nil {
		return "", err
	}
	after, err := b.readState(ctx)
	if err != nil {
		return "", err
	}
	if err := verify(l, after); err != nil {
		return "", err
	}
	b.remember(ns, g, after)
	return "read back", nil
}

// A record is the state of the table as of a ruleset generation, known
// because this Backend read it back or committed it.
type record struct {
	netns uint64 // netnsCookie
	table string
	gen   uint32
	st    *state
}

// recorded returns the recorded state if it is current: same namespace
// and table, and no transaction committed since.
func (b *Backend) recorded(ns uint64, gen uint32) *state {
	r := b.rec
	if r == nil || ns == 0 || r.netns != ns || r.table != b.table() || r.gen != gen {
		return nil
	}
	return r.st
}

func (b *Backend) remember(ns uint64, gen uint32, st *state) {
	b.rec = nil
	if ns != 0 {
		b.rec = &record{netns: ns, table: b.table(), gen: gen, st: st}
	}
}

// Diff reports what Apply would change, without changing anything.
func (b *Backend) Diff(ctx context.Context, p *steer.Plan) (backend.Report, error) {
	return b.Apply(ctx, p, backend.ApplyOptions{DryRun: true})
}

// Test hooks: before sending, to add a failing command to the transaction
// or commit something else first; after the commit, to commit something
// else before the verify.
var (
	testHookBeforeFlush func(cc *nftables.Conn, t *nftables.Table)
	testHookAfterFlush  func()
)

// dial opens the socket that reads the generation and sends the
// transaction.
func (b *Backend) dial(ctx context.Context) (*netlink.Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: b.NetNS})
	if err != nil {
		return nil, err
	}
	// Errors carry the kernel's message (extended ack) but not a copy of
	// the request (capped ack), which can be 64 KiB.
	err = errors.Join(c.SetOption(netlink.ExtendedAcknowledge, true), c.SetOption(netlink.CapAcknowledge, true))
	if dl, ok := ctx.Deadline(); ok {
		err = errors.Join(err, c.SetDeadline(dl))
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// readState reads the whole table back with google/nftables.
func (b *Backend) readState(ctx context.Context) (*state, error) {
	cc, err := nftables.New(b.connOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return readState(ctx, cc, b.table(), nil)
}

func (b *Backend) connOpts(ctx context.Context) []nftables.ConnOption {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		if err := c.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			if err := c.SetDeadline(dl); err != nil {
				return err
			}
		}
		// The FORCE variant exceeds net.core.rmem_max; it needs
		// CAP_NET_ADMIN, which changing nftables needs anyway. Dumps of
		// large sets arrive faster than they are parsed.
		return errors.Join(setBuf(c, unix.SO_RCVBUFFORCE, 4<<20), primeDump(c))
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
