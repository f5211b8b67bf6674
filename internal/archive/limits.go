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
	// MaxRatio caps the tar bytes decompressed per compressed byte read,
	// checked on every read once the tar is past RatioGrace; default 50.
	// ExtractTar ignores it.
	MaxRatio int64
}

// Expansion ratios. Real bundles decompress to 1.5 to 6.2 times their
// size, measured as publish-kernel.sh packs them (GNU tar, zstd -19):
// the test kernels in shared/kernels, vmlinux only, 2.7 (arm64 Image),
// 5.8 and 6.0 (x86_64); generic-6.12 3.4 (from its catalog size and
// vmlinux size); and Debian 12's linux-image
// packages as bundles, extracted vmlinux plus the modules/ tree (4,230
// files for 6.12): 6.1 cloud with plain .ko files 5.7, 6.12 with its
// .ko.xz files 1.5, the same with every module decompressed (540 MiB of
// tar) 6.2. Counted from the start of the stream, none goes past 6.6
// once 4 MiB of tar came out. A bomb runs at thousands to one (2 GiB of
// zeros take 70 KiB of zstd: 30,000-fold), so defaultMaxRatio, about
// eight times the densest real bundle, leaves room for kernels that
// compress better than those measured (debug info, an uncompressed
// initrd) and still refuses a bomb after RatioGrace bytes of tar instead
// of gigabytes.
//
// The first megabytes of a real bundle can be far denser: an x86_64
// vmlinux starts with 2 MiB of zero padding before its first segment, so
// a bundle holding only vmlinux runs at about 8,000 to one over its first
// 2 MiB. The ratio is therefore checked only once RatioGrace bytes of tar
// came out, four times past where every measured bundle had settled.
const (
	defaultMaxRatio = 50
	// RatioGrace is the tar a bundle may expand to before Limits.MaxRatio
	// applies.
	RatioGrace = 16 << 20
)

const (
	defaultMaxBytes   = 8 << 30
	defaultMaxWindow  = 128 << 20
	defaultMaxEntries = 100_000

	maxNameLen  = 4096 // bytes in an entry name or a symlink target (PATH_MAX)
	maxSymlinks = 4096
)

// DefaultLimits returns the limits used for catalog bundles: 8 GiB of tar,
// a 128 MiB zstd window, 100,000 entries and a 50-fold expansion.
func DefaultLimits() Limits {
	return Limits{MaxBytes: defaultMaxBytes, MaxWindow: defaultMaxWindow, MaxEntries: defaultMaxEntries, MaxRatio: defaultMaxRatio}
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
	if l.MaxRatio == 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxBytes < 0 || l.MaxEntries < 0 || l.MaxRatio < 0 {
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
