//go:build windows || plan9 || js || wasip1 || wasi

package geo

import (
	"fmt"
	"os"
)

// mapFile reads the file: this platform's build does not map files.
func mapFile(f *os.File, size int64) (data []byte, unmap func() error, err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("%s: size %d", f.Name(), size)
	}
	return readFile(f, size)
}
