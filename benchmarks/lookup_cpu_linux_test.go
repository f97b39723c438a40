package benchmarks

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time the calling thread has used so far. The
// caller locks its goroutine to its thread; time spent waiting for a core
// on a loaded machine is not counted.
func threadCPU() (time.Duration, bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
