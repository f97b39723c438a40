// Package nftables enforces a [steer.Plan] with Linux nftables: it renders
// the plan as an nft -f script for review, and applies it over netlink
// through github.com/google/nftables, without running nft.
//
// The backend owns one table of the inet family (default "geosteer") and
// touches nothing outside it. Every plan set becomes two interval sets,
// <name>_v4 (ipv4_addr) and <name>_v6 (ipv6_addr), holding the plan's
// canonical, overlap-free ranges; auto-merge is never used, so the kernel
// holds exactly what was sent and later deletions find their elements. The
// rules go, in plan order, into one chain "prerouting" of type nat hooked at
// priority dstnat (-100):
//
//	ip daddr 203.0.113.1 tcp dport 25 ip saddr != @english_v4 counter dnat ip to 10.0.0.3:25 comment "foreign-mx1"
//	ip daddr 203.0.113.1 tcp dport 25 ip saddr 0.0.0.0-127.255.255.255 counter dnat ip to 10.0.0.1:25 comment "split-mx1-0"
//
// Apply is one netlink transaction. The first apply, or any apply that finds
// the table not as the backend left it, deletes and rebuilds the table in
// that transaction; later applies diff the plan against the table's state
// and send only the element additions and deletions (and, if the rules
// changed, a flush and refill of the chain), again in one transaction.
// Either way a failure leaves the previous ruleset in force.
//
// The state diffed against is exactly the kernel's: either read back over
// netlink, or remembered by the Backend from its own last transaction when
// the ruleset generation (the kernel's count of committed transactions)
// shows that nothing committed since. Reading back is what costs: the
// kernel's dump of an interval set restarts its walk at every 32 KiB
// message, about a second for 200,000 elements. The transaction carries
// the generation its diff was based on (NFNL_BATCH_GENID), so the kernel
// refuses it if anything committed meanwhile, and Apply starts over. After
// the commit, [Backend.Verify] says what is checked: the generation
// (default), a full read-back, or nothing.
//
// Netlink limits are respected within the transaction: element lists are
// split into messages whose element attribute stays under 64 KiB (a netlink
// attribute length is 16 bits), and the socket buffers are sized to the
// batch, which the kernel receives in one sendmsg and acknowledges message by
// message.
package nftables
