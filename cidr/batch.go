package cidr

// A batch collects ranges pending aggregation. It grows in fixed-size
// chunks and is made contiguous once, when taken: append's 1.25× growth of
// one large slice copies and allocates several times the final size, which
// for half a million ranges costs more than sorting them.
type batch[K key[K]] struct {
	full [][]rng[K] // chunks of chunkLen ranges
	cur  []rng[K]
	n    int
}

const chunkLen = 8192

func (b *batch[K]) push(r rng[K]) {
	if len(b.cur) == cap(b.cur) {
		b.grow()
	}
	b.cur = append(b.cur, r)
	b.n++
}

func (b *batch[K]) pushAll(rs []rng[K]) {
	for _, r := range rs {
		b.push(r)
	}
}

func (b *batch[K]) grow() {
	switch {
	case cap(b.cur) >= chunkLen:
		b.full = append(b.full, b.cur)
		b.cur = make([]rng[K], 0, chunkLen)
	case b.cur == nil:
		b.cur = make([]rng[K], 0, 16)
	default:
		c := make([]rng[K], len(b.cur), 4*cap(b.cur))
		copy(c, b.cur)
		b.cur = c
	}
}

func (b *batch[K]) empty() bool { return b.n == 0 }

// take returns the pending ranges as one slice the caller owns and empties
// the batch.
func (b *batch[K]) take() []rng[K] {
	out := b.cur
	if len(b.full) > 0 {
		out = make([]rng[K], 0, b.n)
		for _, c := range b.full {
			out = append(out, c...)
		}
		out = append(out, b.cur...)
	}
	*b = batch[K]{}
	return out
}
