package nftables

import (
	"log/slog"
	"sync"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/steer"
)

// A Backend renders and applies plans to one nftables table.
//
// The zero Backend works on the table "geosteer" in the caller's network
// namespace, verifying each transaction by the ruleset generation. Apply
// needs CAP_NET_ADMIN; Render needs nothing.
//
// A Backend remembers the table's content as of the ruleset generation its
// last Apply left (the kernel counts committed nftables transactions per
// network namespace). If the generation is unchanged at the next Apply,
// nothing committed in between, in any table, and Apply diffs against what
// it remembers instead of reading the sets back, which costs about as much
// as applying them. Otherwise (another process changed any nftables table,
// a new Backend, a new process) it reads the table back in full. Every
// transaction is sent on condition that the generation is still the one
// its diff was based on (NFNL_BATCH_GENID): if another process committed
// meanwhile, the kernel refuses it and Apply starts over from a full read.
// The memory kept is the plan's ranges, about 48 bytes per range. (Telling
// network namespaces apart needs SO_NETNS_COOKIE, Linux 5.14; on older
// kernels every Apply reads back.)
//
// Apply calls on one Backend are serialized. Two Backends (or processes)
// applying to the same table are safe, each transaction being atomic and
// conditional, but each makes the other read back. A Backend must not be
// copied after first use.
type Backend struct {
	// Table is the inet table the backend owns; "" means [DefaultTable].
	Table string
	// NetNS, if not zero, is an open file descriptor of the network
	// namespace to work in (such as /run/netns/NAME); zero is the caller's.
	NetNS int
	// Verify says how Apply checks the table after its transaction.
	Verify Verify
	// Logger receives progress and timing at debug level; nil discards.
	Logger *slog.Logger

	mu       sync.Mutex
	rec      *record
	lastBase string // how the last Apply learnt the table: "recorded" or "read back"
}

// A Verify says what Apply checks after its transaction committed. Any
// mode reports a transaction the kernel refused; what differs is what is
// proved about the table afterwards. The transaction itself is always
// diffed against state that is exactly the kernel's: read back, or
// remembered at an unchanged generation.
type Verify int

const (
	// VerifyGeneration (the default) reads the ruleset generation after the
	// commit: it must be exactly one past the generation the transaction
	// was based on. That proves no other transaction committed between
	// the read (or the remembered state) and ours, nor after ours until the
	// check, so the table holds the remembered state with exactly our
	// changes applied: the plan, as far as the kernel applies what it
	// acknowledges. If the generation moved further, Apply falls back to
	// VerifyFull. One round trip.
	VerifyGeneration Verify = iota
	// VerifyFull reads the whole table back (chains, rules, every set
	// element) and compares it with the plan. It proves the kernel's actual
	// contents equal the plan, independently of how they were sent, and
	// costs about a second for 200,000 elements (the kernel's set dump is
	// quadratic).
	VerifyFull
	// VerifyNone checks nothing after the kernel's acknowledgement. The
	// next Apply still notices any other transaction by the generation.
	VerifyNone
)

var (
	_ backend.Renderer = (*Backend)(nil)
	_ backend.Applier  = (*Backend)(nil)
)

func (b *Backend) table() string {
	if b.Table == "" {
		return DefaultTable
	}
	return b.Table
}

func (b *Backend) log() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// checkPlan validates p and refuses what this backend cannot enforce
// (hash splits: see steer.NFTables).
func checkPlan(p *steer.Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return p.Check(steer.NFTables)
}
