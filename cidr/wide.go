package cidr

import (
	"math/big"
	"math/bits"
)

// Counting for the optimizers (goal.go, optimal.go, budget.go). Address
// counts of IPv6 space need 128 bits and weighted costs (count × entries)
// up to about 150, so counts reuse a6 as an unsigned 128-bit number and
// costs use u192. Both families run through the same code: an IPv4 address
// or count is an a6 with hi = 0.

func (a a6) add(b a6) a6 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	return a6{a.hi + b.hi + c, lo}
}

func (a a6) isZero() bool { return a.hi == 0 && a.lo == 0 }

// big returns a as a big.Int.
func (a a6) big() *big.Int {
	n := new(big.Int).SetUint64(a.hi)
	n.Lsh(n, 64)
	return n.Or(n, new(big.Int).SetUint64(a.lo))
}

// u192 is an unsigned 192-bit number, most significant word first.
type u192 struct{ hi, mid, lo uint64 }

func wide(a a6) u192 { return u192{0, a.hi, a.lo} }

// mul returns a·b exactly.
func mul(a a6, b uint64) u192 {
	h1, l1 := bits.Mul64(a.lo, b)
	h2, l2 := bits.Mul64(a.hi, b)
	mid, c := bits.Add64(h1, l2, 0)
	return u192{h2 + c, mid, l1}
}

func (x u192) add(y u192) u192 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	mid, c := bits.Add64(x.mid, y.mid, c)
	return u192{x.hi + y.hi + c, mid, lo}
}

func (x u192) sub(y u192) u192 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	mid, b := bits.Sub64(x.mid, y.mid, b)
	return u192{x.hi - y.hi - b, mid, lo}
}

func (x u192) less(y u192) bool {
	if x.hi != y.hi {
		return x.hi < y.hi
	}
	if x.mid != y.mid {
		return x.mid < y.mid
	}
	return x.lo < y.lo
}

// divCeil returns ⌈x/d⌉ for d > 0, saturated at 2^128−1.
func (x u192) divCeil(d uint64) a6 {
	if x.hi >= d {
		return max6
	}
	qm, r := bits.Div64(x.hi, x.mid, d)
	ql, r := bits.Div64(r, x.lo, d)
	q := a6{qm, ql}
	if r != 0 {
		q = q.succ()
	}
	return q
}
