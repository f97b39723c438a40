package splitter

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLoopHold pins loop.hold, the wait in epoll_pwait2 before parking in
// Go's poller: an event already there or arriving within holdWait is taken
// by the hold; a hold that times out makes the next waits skip it, twice
// as many after each timeout up to holdSkipMax, and one that takes events
// ends the backoff; a hold cut short by the earliest timer reports it due
// without counting as a timeout. Driven by hand on a loop that is not
// running, so every step is deterministic.
func TestLoopHold(t *testing.T) {
	lp, err := newLoop(&Splitter{log: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		lp.file.Close()
		unix.Close(lp.evfd)
	}()
	events := make([]unix.EpollEvent, 8)
	wake := func() { lp.do(func() {}) } // the eventfd, as a command wakes the loop
	drain := func() {
		var b [8]byte
		unix.Read(lp.evfd, b[:])
	}
	if lp.holdOff {
		t.Skip("no epoll_pwait2 (Linux before 5.11)")
	}

	// An event already there: taken at once.
	wake()
	if n, ok := lp.hold(events); !ok || n != 1 || int(events[0].Fd) != lp.evfd {
		t.Fatalf("hold with an event pending = %d, %v; want 1, true", n, ok)
	}
	drain()

	// An event that arrives while the loop holds.
	go func() { time.Sleep(holdWait / 4); wake() }()
	var n int
	var ok bool
	for range 20 { // the sleeper may be late on a loaded machine: a timeout is retried
		lp.holdSkip, lp.holdBackoff = 0, 0
		if n, ok = lp.hold(events); ok {
			break
		}
	}
	if !ok || n != 1 {
		t.Fatalf("hold while an event arrives = %d, %v; want 1, true", n, ok)
	}
	drain()
	if lp.holdBackoff != 0 || lp.holdSkip != 0 {
		t.Fatalf("after a hold that took events: skip %d, backoff %d; want 0, 0", lp.holdSkip, lp.holdBackoff)
	}

	// Timeouts back off: 1, 3, 7, ... waits skip the hold, up to holdSkipMax.
	want := 0
	for range 8 {
		t0 := time.Now()
		if n, ok := lp.hold(events); ok || n != 0 {
			t.Fatalf("hold with nothing to take = %d, %v; want 0, false", n, ok)
		}
		if d := time.Since(t0); d < holdWait {
			t.Fatalf("hold returned after %v, before holdWait (%v)", d, holdWait)
		}
		want = min(2*want+1, holdSkipMax)
		if lp.holdSkip != want {
			t.Fatalf("after a timeout: skip %d, want %d", lp.holdSkip, want)
		}
		for i := range want {
			if _, ok := lp.hold(events); ok {
				t.Fatalf("wait %d of %d after a timeout held", i+1, want)
			}
		}
		if lp.holdSkip != 0 {
			t.Fatalf("skip %d after skipping", lp.holdSkip)
		}
	}
	// Events end the backoff.
	wake()
	if _, ok := lp.hold(events); !ok || lp.holdBackoff != 0 {
		t.Fatalf("hold with an event after timeouts: %v, backoff %d; want true, 0", ok, lp.holdBackoff)
	}
	drain()

	// The earliest timer bounds the hold and is reported due; no backoff.
	tm := &timer{i: -1, h: timerFunc(func() {})}
	lp.setTimer(tm, lp.clock()+int64(holdWait/2))
	if n, ok := lp.hold(events); !ok || n != 0 {
		t.Fatalf("hold cut short by a timer = %d, %v; want 0, true", n, ok)
	}
	if lp.clock() < tm.when {
		t.Fatalf("hold returned %v before the timer was due", time.Duration(tm.when-lp.clock()))
	}
	if lp.holdSkip != 0 || lp.holdBackoff != 0 {
		t.Fatalf("after a hold cut short by a timer: skip %d, backoff %d; want 0, 0", lp.holdSkip, lp.holdBackoff)
	}
	// A timer already due: no hold at all.
	if _, ok := lp.hold(events); ok {
		t.Fatal("held with a timer due")
	}
}
