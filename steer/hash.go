package steer

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
)

// A HashRange restricts a rule to the sources whose hash lies in Lo..Hi
// (inclusive): the hash is the Linux kernel's jhash of the source address
// (4 or 16 bytes, network order) with Seed, scaled to 0..Mod-1 as nftables
// computes "jhash ip saddr mod Mod seed Seed". The zero HashRange (Mod 0)
// restricts nothing.
//
// The kernel reads the first 12 bytes of an IPv6 address as host-order
// words, so IPv6 values agree with nftables only on little-endian routers
// (x86, little-endian ARM); IPv4 values agree everywhere.
type HashRange struct {
	Seed   uint32
	Mod    uint32
	Lo, Hi uint32
}

// Contains reports whether src's hash lies in the range.
func (h HashRange) Contains(src netip.Addr) bool {
	v := h.Value(src)
	return h.Lo <= v && v <= h.Hi
}

// Value returns src's hash, 0..Mod-1. IPv4-mapped addresses are hashed as
// IPv4, as the router sees them.
func (h HashRange) Value(src netip.Addr) uint32 {
	src = src.Unmap()
	var x uint32
	if src.Is4() {
		b := src.As4()
		x = jhash(b[:], h.Seed)
	} else {
		b := src.As16()
		x = jhash(b[:], h.Seed)
	}
	// reciprocal_scale: the kernel's modulus without a division.
	return uint32(uint64(x) * uint64(h.Mod) >> 32)
}

// jhash is the kernel's jhash() (Bob Jenkins' lookup3 hashlittle) on a
// little-endian machine.
func jhash(k []byte, seed uint32) uint32 {
	a := 0xdeadbeef + uint32(len(k)) + seed
	b, c := a, a
	for len(k) > 12 {
		a += le32(k)
		b += le32(k[4:])
		c += le32(k[8:])
		a, b, c = jmix(a, b, c)
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], k)
	a += le32(tail[:])
	b += le32(tail[4:])
	c += le32(tail[8:])
	return jfinal(a, b, c)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func jmix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func jfinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// Capabilities say what an enforcement point can express beyond the plan's
// common form (entry point, source range, source set, DNAT).
type Capabilities struct {
	Name string
	// JHash: the backend computes [HashRange] exactly (pinned seed).
	JHash bool
	// Why, if not empty, says why JHash is false, for error messages.
	Why string
}

// The project's backends.
var (
	// RouterOS's per-connection classifier hashes with an unpublished
	// function, so no other backend can reproduce its split.
	RouterOS = Capabilities{Name: "routeros", Why: "RouterOS PCC's hash function is unpublished, so no other backend can agree with it"}
	// nftables could compute jhash with a pinned seed ("jhash ip saddr mod
	// N seed S"; without "seed" the kernel picks a random one on every
	// load), but the backend does not render hash splits yet, and the
	// kernel's jhash has not been checked against HashRange on a real
	// kernel: until both are done, hash splits are refused for it.
	NFTables = Capabilities{Name: "nftables", Why: "the nftables backend does not render hash splits yet"}
	// The in-process splitter evaluates the plan itself.
	Splitter = Capabilities{Name: "splitter", JHash: true}
)

// Check reports whether every backend given can enforce the plan: a plan
// with hash-split rules needs backends that compute [HashRange]. Backends
// call it before rendering; [Compile] calls it with [Options.Backends].
func (p *Plan) Check(backends ...Capabilities) error {
	var errs []error
	for _, be := range backends {
		if be.JHash {
			continue
		}
		for _, r := range p.Rules {
			if r.SrcHash.Mod != 0 {
				why := be.Why
				if why == "" {
					why = "it cannot compute the kernel's jhash with a pinned seed"
				}
				errs = append(errs, fmt.Errorf("steer: rule %s is a hash split, which backend %s cannot enforce: %s: %w", r.Name, be.Name, why, ErrUnsupported))
				break
			}
		}
	}
	return errors.Join(errs...)
}
