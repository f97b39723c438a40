// Package routeros enforces a [steer.Plan] on MikroTik RouterOS: as .rsc
// scripts to /import ([Script], a [backend.Renderer]), or live over the
// binary API ([Router], a [backend.Applier]; [ApplyAll] for many routers).
//
// Each plan set becomes an address list per family, each plan rule a
// dstnat rule with action=dst-nat (split IPv6 source ranges become one
// rule per prefix). Managed entries carry the comment tag ("geosteer"),
// managed rules "geosteer <rule name>"; nothing else is ever changed.
//
// # Never half-loaded
//
// Lists are versioned: ListPrefix+set+".v4."+generation. New content is
// loaded into a generation no rule uses, checked to be complete, and
// only then are the rules repointed (one "set" per distinct value), after
// which the old generation is removed. [Mode] chooses what happens to the
// old generation (removed, or kept as a standby so the next change costs
// only the difference) or trades atomicity for memory ([InPlace]).
//
// # The API sync
//
// [Router.Apply] dials the router itself (deadlines on connect, TLS and
// login), learns the managed state, diffs, and sends only the changes:
// adds pipelined with up to Window tagged commands in flight, removes as
// comma-separated ids, rules with place-before and move. Tags, pipelining
// and deadlines are the package's own (conn.go), not go-routeros' Async
// mode, which loses replies; the wire codec is too (wire.go: proto's
// starts a goroutine per read), still producing go-routeros
// proto.Sentence values.
//
// # Remembered state, and what the counts can tell
//
// RouterOS has no generation counter, so nothing proves cheaply that a
// list is as it was. A Router remembers what its last successful Apply
// left (each list's content, shared with the plan, and each entry's id:
// 8 bytes per entry) and the next Apply confirms it with count-only
// queries, one per family and one per managed list, in one round trip.
// Counts catch a generation that appeared, a list emptied by a reboot
// (Timeout entries), entries added, removed or disabled by hand, another
// sync from elsewhere that changed a size. They cannot catch a change that
// keeps every count: an entry's address edited in place, as many entries
// removed as added in one list. [VerifyFull] reads everything before and
// after instead; run it now and then. Without a confirmed memo (the first
// Apply of a Router, a process restart, any count off, any failed Apply)
// Apply reads every managed entry with one print per family (.proplist
// plus a ?comment= query), as it always did.
//
// So an incremental sync costs commands, bytes and client memory in
// proportion to the change, plus, on the router, the count queries'
// scans of its lists (the router counts, nothing is sent) and, on the
// client, one in-memory walk of the remembered and wanted entries.
//
// The client's memory does not grow with the list beyond the plan and the
// remembered ids: commands are generated while they are sent (an initial
// 100,000-entry sync peaks at the same heap as a 10,000-entry one), and
// replies are parsed into one string per row. A full read does hold every
// entry read (56 bytes each, sorted, since RouterOS prints in insertion
// order, not address order) until the diff is made.
//
// Known limits, not checked against a real router (see
// routerostest's "unconfirmed" notes): how RouterOS prints a non-CIDR IPv4
// range (Apply compares entries by value, so any form works), the
// script syntax "!prop" for unsetting a property in set, and that
// count-only with several query words counts their conjunction, with
// "?disabled=false" matching enabled entries (as MikroTik documents it;
// a count that disagrees only costs a full read).
package routeros
