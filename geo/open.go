package geo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Open loads country data from a path, choosing the reader by what the
// path holds: a directory of GeoLite2 CSV files or of per-country zone
// files, a RIR delegated statistics file (delegated-*), a CSV file, or a
// MaxMind DB (by its metadata marker, whatever its name).
func Open(ctx context.Context, path string, opts *Options) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	if fi.IsDir() {
		if m, _ := filepath.Glob(filepath.Join(path, "*-Blocks-IPv*.csv")); len(m) > 0 {
			return LoadGeoLite2CSV(ctx, path, opts)
		}
		return LoadZoneDir(ctx, path, opts)
	}
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "delegated-"):
		return LoadRIR(ctx, path, opts)
	case isMMDB(path, fi.Size()):
		return LoadMMDB(ctx, path, opts)
	case strings.HasSuffix(base, ".csv"):
		return LoadCSV(ctx, path, opts)
	}
	return nil, fmt.Errorf("geo: %s: not a MaxMind DB, CSV, RIR file or directory this package reads", path)
}

// metadataMarker starts a MaxMind DB's metadata, within its last 128 KiB.
var metadataMarker = []byte("\xab\xcd\xefMaxMind.com")

func isMMDB(path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	n := min(size, 128<<10)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil {
		return false
	}
	return bytes.Contains(buf, metadataMarker)
}
