package ext4

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// BlockSize is the block size of the filesystems Make writes.
const BlockSize = 4096

// Usage is what a directory tree needs in an ext4 filesystem.
type Usage struct {
	Bytes  int64 // data and directory blocks, each file rounded up to a block
	Inodes int64 // files, directories, links and special files (hardlinks once)
}

// DirUsage measures the tree at dir. Files with several hard links count once.
func DirUsage(ctx context.Context, dir string) (Usage, error) {
	var u Usage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 && !fi.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		u.Inodes++
		switch {
		case fi.Mode().IsRegular(), fi.IsDir():
			u.Bytes += roundUp(max(fi.Size(), 1), BlockSize)
		case fi.Mode()&fs.ModeSymlink != 0 && fi.Size() >= 60:
			u.Bytes += BlockSize // longer targets do not fit in the inode
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("measuring %s: %w", dir, err)
	}
	return u, nil
}

// MinHeadroom is the least free space a default-sized image keeps beyond
// its content; larger images keep a quarter of their content free. Images
// are sparse files, so unused space costs no disk, and a VM can be given a
// larger disk than its image.
const MinHeadroom = 256 << 20

// DefaultSize is the size of an image holding u: the content, a tenth more
// for filesystem metadata, plus max(MinHeadroom, content/4), rounded up to
// a MiB.
func DefaultSize(u Usage) int64 {
	return roundUp(u.Bytes+u.Bytes/10+u.Inodes*256+max(MinHeadroom, u.Bytes/4), 1<<20)
}

// MinSize is the smallest image that holds u with a little slack; --size
// below it is refused.
func MinSize(u Usage) int64 {
	return roundUp(u.Bytes+u.Bytes/10+u.Inodes*256+32<<20, 1<<20)
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// ParseSize parses a size such as "2G", "512M", "1.5GiB" or "1073741824"
// (bytes). Units are binary: K, M, G, T, with an optional "iB" or "B".
func ParseSize(s string) (int64, error) {
	num, mult := splitUnit(strings.ToUpper(strings.TrimSpace(s)))
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("invalid size %q (hint: use a number with a unit, such as 2G or 512M)", s)
	}
	return int64(f * float64(mult)), nil
}

// splitUnit splits "1.5GIB" into "1.5" and 1<<30.
func splitUnit(s string) (string, int64) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	units := map[byte]int64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
	if n := len(s); n > 0 {
		if m, ok := units[s[n-1]]; ok {
			return s[:n-1], m
		}
	}
	return s, 1
}
