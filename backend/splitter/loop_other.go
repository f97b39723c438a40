//go:build !linux

package splitter

import (
	"errors"
	"net/netip"
)

const defaultEngine = EngineGoroutine

// eventLoops is the event-loop engine, which needs Linux's epoll.
type eventLoops struct{}

var errNoEventLoop = errors.New("splitter: the event-loop engine needs Linux")

func newEventLoops(*Splitter) (*eventLoops, error) { return nil, errNoEventLoop }

func (*eventLoops) listen(ep, local netip.AddrPort) (*listener, error) { return nil, errNoEventLoop }
func (*eventLoops) start(*listener)                                    {}
func (*eventLoops) closeListener(*listener)                            {}
func (*eventLoops) closeAll() int                                      { return 0 }
func (*eventLoops) stop()                                              {}
