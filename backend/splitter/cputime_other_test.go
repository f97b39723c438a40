//go:build !unix

package splitter

import "time"

// cpuTime is unknown here: -1.
func cpuTime() time.Duration { return -1 }
