package archive

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Limits bounds what one bundle may expand to. A zero field takes its
// default.
type Limits struct {
	MaxBytes   int64  // cap on total decompressed tar bytes; default 8 GiB
	MaxWindow  uint64 // cap on the zstd window size; default 128 MiB
	MaxEntries int    // cap on the number of entries, implicit directories included; default 100,000
}

const (
	defaultMaxBytes   = 8 << 30
	defaultMaxWindow  = 128 << 20
	defaultMaxEntries = 100_000

	maxNameLen  = 4096 // bytes in an entry name or a symlink target (PATH_MAX)
	maxSymlinks = 4096
)

// DefaultLimits returns the limits used for catalog bundles: 8 GiB of tar,
// a 128 MiB zstd window and 100,000 entries.
func DefaultLimits() Limits {
	return Limits{MaxBytes: defaultMaxBytes, MaxWindow: defaultMaxWindow, MaxEntries: defaultMaxEntries}
}

func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxWindow == 0 {
		l.MaxWindow = d.MaxWindow
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxBytes < 0 || l.MaxEntries < 0 {
		return l, fmt.Errorf("invalid bundle limits %+v: negative value", l)
	}
	if l.MaxWindow < zstd.MinWindowSize {
		return l, fmt.Errorf("invalid bundle limits: zstd window cap %d is below the zstd minimum %d", l.MaxWindow, zstd.MinWindowSize)
	}
	return l, nil
}

// size formats a byte count for error messages: 8 GiB, 128 MiB, 1500 bytes.
func size(n uint64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
