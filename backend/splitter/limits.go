package splitter

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
)

// sourceLimiter counts concurrent connections per source prefix without a
// lock: the prefix is hashed into a fixed table of atomic counters.
// Collisions make two prefixes share one cap (stricter, never looser), which
// with 65,536 buckets needs thousands of concurrently busy prefixes to
// matter. The zero max disables it.
type sourceLimiter struct {
	max          int32
	bits4, bits6 int
	mul          uint64 // odd random multiplier: the bucket of a prefix is not predictable from outside
	buckets      []atomic.Int32
}

const limiterBits = 16

func newSourceLimiter(max, bits4, bits6 int) *sourceLimiter {
	l := &sourceLimiter{max: int32(max), bits4: bits4, bits6: bits6, mul: rand.Uint64() | 1}
	if max > 0 {
		l.buckets = make([]atomic.Int32, 1<<limiterBits)
	}
	return l
}

// bucket returns the counter index of a's prefix.
func (l *sourceLimiter) bucket(a netip.Addr) int {
	a = a.Unmap()
	var k uint64
	if a.Is4() {
		b := a.As4()
		v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		k = v >> (32 - l.bits4) << (32 - l.bits4)
	} else {
		b := a.As16()
		var hi, lo uint64
		for i := range 8 {
			hi = hi<<8 | uint64(b[i])
			lo = lo<<8 | uint64(b[8+i])
		}
		switch {
		case l.bits6 <= 64:
			hi = hi >> (64 - l.bits6) << (64 - l.bits6)
			lo = 0
		default:
			lo = lo >> (128 - l.bits6) << (128 - l.bits6)
		}
		k = hi ^ (lo * 0x9e3779b97f4a7c15) ^ 1<<63 // keep v6 keys apart from v4 ones
	}
	return int((k * l.mul) >> (64 - limiterBits))
}

// acquire counts a connection from a; it returns the bucket to release and
// false (with nothing counted) when the prefix is at its cap.
func (l *sourceLimiter) acquire(a netip.Addr) (int, bool) {
	if l.max <= 0 {
		return -1, true
	}
	i := l.bucket(a)
	if l.buckets[i].Add(1) > l.max {
		l.buckets[i].Add(-1)
		return -1, false
	}
	return i, true
}

func (l *sourceLimiter) release(i int) {
	if i >= 0 {
		l.buckets[i].Add(-1)
	}
}
