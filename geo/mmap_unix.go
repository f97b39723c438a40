//go:build !windows && !plan9 && !js && !wasip1 && !wasi

package geo

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps a file read-only, as maxminddb.Open does: the walk and the
// record decoder then share the page cache's copy instead of holding one
// on the heap. Files that cannot be mapped are read instead.
func mapFile(f *os.File, size int64) (data []byte, unmap func() error, err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("%s: size %d", f.Name(), size)
	}
	data, err = unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return readFile(f, size)
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
