package splitter

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTimerHeap checks the event loop's timer heap against a plain list
// under random arming, re-arming and stopping: timers fire in deadline
// order, each once, only when due, and stopped ones never.
func TestTimerHeap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		lp := &loop{}
		var fired []int
		ts := make([]*timer, 50)
		want := map[int]int64{} // armed timers and their deadlines
		for i := range ts {
			ts[i] = &timer{i: -1, h: timerFunc(func() { fired = append(fired, i) })}
		}
		now := int64(0)
		for range 2000 {
			i := rng.IntN(len(ts))
			switch rng.IntN(4) {
			case 0, 1:
				when := now + rng.Int64N(100)
				lp.setTimer(ts[i], when)
				want[i] = when
			case 2:
				lp.stopTimer(ts[i])
				delete(want, i)
			case 3:
				now += rng.Int64N(30)
				fired = fired[:0]
				for len(lp.timers) > 0 && lp.timers[0].when <= now {
					lp.timers[0].h.onTimer() // as runTimers, with a fake clock
					lp.stopTimer(lp.timers[0])
				}
				var due []int
				for j, w := range want {
					if w <= now {
						due = append(due, j)
						delete(want, j)
					}
				}
				slices.SortFunc(due, func(a, b int) int { return int(ts[a].when - ts[b].when) })
				if len(fired) != len(due) {
					t.Fatalf("seed %d: fired %v, want %v", seed, fired, due)
				}
				for k := range fired {
					if ts[fired[k]].when != ts[due[k]].when {
						t.Fatalf("seed %d: fired %v, want %v (by deadline)", seed, fired, due)
					}
					if k > 0 && ts[fired[k]].when < ts[fired[k-1]].when {
						t.Fatalf("seed %d: out of order: %v", seed, fired)
					}
				}
			}
			if len(lp.timers) != len(want) {
				t.Fatalf("seed %d: %d armed, want %d", seed, len(lp.timers), len(want))
			}
			for k, tm := range lp.timers {
				if tm.i != k {
					t.Fatalf("seed %d: timer at %d thinks it is at %d", seed, k, tm.i)
				}
			}
		}
	}
}
