package routeros

import (
	"context"
	"sync"

	"github.com/geosteer/geosteer/backend"
	"github.com/geosteer/geosteer/steer"
)

// A Result is the outcome of one router in [ApplyAll].
type Result struct {
	Router *Router
	Report backend.Report
	Err    error
}

// ApplyAll applies p to every router, at most parallel at a time (all at
// once if parallel <= 0), and returns one Result per router in the order
// given. One router failing does not stop the others; cancelling ctx
// stops all. opts.Progress, if set, sees the sum over all routers.
func ApplyAll(ctx context.Context, routers []*Router, p *steer.Plan, opts backend.ApplyOptions, parallel int) []Result {
	if parallel <= 0 || parallel > len(routers) {
		parallel = len(routers)
	}
	out := make([]Result, len(routers))
	var (
		mu          sync.Mutex
		done, total = make([]int, len(routers)), make([]int, len(routers))
		wg          sync.WaitGroup
		sem         = make(chan struct{}, parallel)
	)
	for i, r := range routers {
		o := opts
		if opts.Progress != nil {
			o.Progress = func(d, t int) {
				mu.Lock()
				done[i], total[i] = d, t
				var sd, st int
				for j := range done {
					sd, st = sd+done[j], st+total[j]
				}
				opts.Progress(sd, st) // under mu: calls stay ordered
				mu.Unlock()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Result{Router: r, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			rep, err := r.Apply(ctx, p, o)
			out[i] = Result{Router: r, Report: rep, Err: err}
		}()
	}
	wg.Wait()
	return out
}
