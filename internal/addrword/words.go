package addrword

import "net/netip"

// Words returns addr's two words in place, without consulting [Fast]: for
// a hot path that reads several addresses and checks Fast once, taking
// [Hi64] and [Lo64] (or the public API) where Fast is false. Where Fast
// is false the words it returns are meaningless.
func Words(addr netip.Addr) (hi, lo uint64) {
	return rawHi(addr), rawLo(addr)
}
