// Package routeros enforces a [steer.Plan] on MikroTik RouterOS: as .rsc
// scripts to /import ([Script], a [backend.Renderer]), or live over the
// binary API ([Router], a [backend.Applier]; [ApplyAll] for many routers).
//
// Each plan set becomes an address list per family, each plan rule a
// dstnat rule with action=dst-nat (split IPv6 source ranges become one
// rule per prefix). Managed entries carry the comment tag ("geosteer"),
// managed rules "geosteer <rule name>"; nothing else is ever changed.
//
// # Entries a technician added
//
// An untagged entry in a managed list is never removed, disabled or
// edited. One that holds exactly an address the plan wants stands for it:
// RouterOS refuses a second entry with the same list and address
// ("already have such entry"), and the list routes the address anyway. A
// full read finds such entries (the enabled, static, untagged entries of
// each managed generation: one more print per generation); an add that still
// meets one (a list only hand entries hold, such as a generation name
// reused) looks it up by list and address. Either way the sync counts it
// as present, remembers it, and never removes it, even when the plan no
// longer wants its address. If that entry is disabled the list would miss
// the address, and the entry is not ours to enable: Apply fails before
// any rule is pointed at the list (InPlace has changed the referenced
// list already, as it always does). An untagged entry that overlaps ours
// without being equal (a /25 inside our /24, a /23 around it) meets no
// trap: both stay, and the list routes their union, so an entry reaching
// beyond the plan's set routes more than the plan says, as the
// technician asked. In [BlueGreen] and [Standby] hand entries stay in the
// generation they were added to: once rules move to another generation
// they route nothing until rules come back to it.
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
// queries, one per family, two per managed list (its enabled tagged
// entries; its newest entry by id, list and address, since a reboot may
// renumber ids and leave every count as it was) and one per remembered
// hand entry (see above), in one round trip. The per-list counts are of
// enabled entries carrying the tag, so they are blind to untagged entries
// except those remembered, which are counted one by one by id, list,
// address and enabled. Counts catch a generation that appeared, a list
// emptied by a reboot (entries a script loaded with a timeout), tagged
// entries added, removed or
// disabled by hand, a remembered hand entry removed, disabled, edited or
// expired, another sync from elsewhere that changed a size. They cannot
// catch a change that keeps every count: a tagged entry's address edited
// in place, as many entries removed as added in one list, or a new hand
// entry equal to an address we hold (RouterOS refuses it anyway).
// [VerifyFull] reads everything before and after instead; run it now and
// then. (An API sync adds permanent entries only: see [Router.Timeout].) Without a confirmed memo (the first
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
// script syntax "!prop" for unsetting a property in set, that
// count-only with several query words counts their conjunction, with
// "?disabled=false" matching enabled entries (as MikroTik documents it;
// a count that disagrees only costs a full read), and that "?.id=*X" and
// "?#!" (negation: "comment is not the tag") work in queries as
// documented.
package routeros
