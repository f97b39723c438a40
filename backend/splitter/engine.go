package splitter

import "fmt"

// An Engine is how a [Splitter] moves connections. Both engines enforce the
// same plan with the same options, counters and logs; they differ in cost.
type Engine int

const (
	// EngineAuto, the zero value, picks the platform's best engine:
	// [EngineEventLoop] on Linux, [EngineGoroutine] elsewhere.
	EngineAuto Engine = iota
	// EngineGoroutine serves each connection with goroutines on Go's net
	// package (one per direction while relaying; splice(2) on Linux). It
	// runs everywhere Go does.
	EngineGoroutine
	// EngineEventLoop serves connections from event loops of its own
	// (Linux only: epoll, edge-triggered, non-blocking sockets), one per
	// GOMAXPROCS at start: one goroutine each, whatever the number of
	// connections, and fewer system calls per connection than net's
	// poller makes. New fails with it on other systems.
	EngineEventLoop
)

func (e Engine) String() string {
	switch e {
	case EngineAuto:
		return "auto"
	case EngineGoroutine:
		return "goroutine"
	case EngineEventLoop:
		return "eventloop"
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// MarshalText returns the engine's name, as String does.
func (e Engine) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText parses "auto", "goroutine" or "eventloop" (for flags and
// configuration files: flag.TextVar).
func (e *Engine) UnmarshalText(b []byte) error {
	for _, x := range []Engine{EngineAuto, EngineGoroutine, EngineEventLoop} {
		if string(b) == x.String() {
			*e = x
			return nil
		}
	}
	return fmt.Errorf("splitter: unknown engine %q: want auto, goroutine or eventloop", b)
}

// resolve returns the engine e stands for on this system.
func (e Engine) resolve() Engine {
	if e == EngineAuto {
		return defaultEngine
	}
	return e
}
