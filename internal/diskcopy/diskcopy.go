// Package diskcopy copies disk images cheaply: a reflink where the
// filesystem can share blocks, else only the data extents, so holes in the
// source stay holes in the copy.
package diskcopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// chunk bounds each copy step so cancellation is noticed quickly.
const chunk = 16 << 20

// Copy copies the regular file src to dst. It first tries a reflink
// (FICLONE); where the filesystem cannot share blocks it copies only the
// data regions found with SEEK_DATA/SEEK_HOLE and never writes the holes.
// The copy is written to a temporary file beside dst, synced and renamed
// into place, so dst is either the old file or the complete copy. dst gets
// src's permission bits.
func Copy(ctx context.Context, dst, src string) error {
	return CopyWith(ctx, dst, src, Options{})
}

// Options tune CopyWith.
type Options struct {
	// Perm, if not zero, is dst's permission instead of src's.
	Perm os.FileMode
	// SkipZeros also leaves holes where src's data is all zeros (4 KiB
	// blocks), at the cost of reading it through user space: for guest
	// memory, whose allocated pages are often zero. No reflink is tried.
	SkipZeros bool
}

// CopyWith is Copy tuned by o.
func CopyWith(ctx context.Context, dst, src string, o Options) error {
	_, err := CopyMethod(ctx, dst, src, o)
	return err
}

// Method is how a copy was made.
type Method string

// Methods.
const (
	// Reflink: dst shares src's blocks (FICLONE) until either is written.
	Reflink Method = "reflink"
	// Sparse: src's data regions were copied, its holes left holes.
	Sparse Method = "copy"
)

// CopyMethod is CopyWith, and reports whether the copy is a reflink.
func CopyMethod(ctx context.Context, dst, src string, o Options) (m Method, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("copying %s: %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", fmt.Errorf("copying %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("copying %s: not a regular file", src)
	}
	dir := filepath.Dir(dst)
	out, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m = Reflink
	if o.SkipZeros || unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		m = Sparse
		if err := copySparse(ctx, out, in, fi.Size(), o.SkipZeros); err != nil {
			return "", fmt.Errorf("copying %s to %s: %w", src, dst, err)
		}
	}
	perm := fi.Mode().Perm()
	if o.Perm != 0 {
		perm = o.Perm
	}
	if err := out.Chmod(perm); err != nil {
		return "", fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("copying %s to %s: syncing: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return "", fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return m, syncDir(dir)
}

// copySparse sets out's size to size and copies each data region of in.
func copySparse(ctx context.Context, out, in *os.File, size int64, skipZeros bool) error {
	if err := out.Truncate(size); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	var pos int64
	for pos < size {
		start, end, ok := NextData(in, pos, size)
		if !ok {
			return nil // only a hole remains
		}
		var err error
		if skipZeros {
			err = copyBuffered(ctx, out, in, start, end, buf)
		} else {
			err = copyRange(ctx, out, in, start, end, buf)
		}
		if err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// NextData returns the next region of f holding data, [start, end), at or
// after pos and before size, found with SEEK_DATA and SEEK_HOLE; ok is
// false when only a hole remains. Where the filesystem cannot tell, the
// rest of the file counts as data.
func NextData(f *os.File, pos, size int64) (start, end int64, ok bool) {
	start, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return 0, 0, false
	}
	if err != nil {
		start = pos
	}
	if start >= size {
		return 0, 0, false
	}
	end, err = unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
	if err != nil || end > size {
		end = size
	}
	return start, end, true
}

// copyRange copies bytes [start, end) of in to the same offsets in out,
// in the kernel when it can (copy_file_range), else through a buffer.
func copyRange(ctx context.Context, out, in *os.File, start, end int64, buf []byte) error {
	for start < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(end-start, chunk)
		roff, woff := start, start
		done, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(n), 0)
		if err != nil || done == 0 {
			return copyBuffered(ctx, out, in, start, end, buf)
		}
		start += int64(done)
	}
	return nil
}

// copyBuffered is copyRange's fallback; it also leaves all-zero blocks
// unwritten, so they stay holes.
func copyBuffered(ctx context.Context, out, in *os.File, start, end int64, buf []byte) error {
	for start < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := in.ReadAt(buf[:min(int64(len(buf)), end-start)], start)
		if n == 0 && err != nil {
			if err == io.EOF {
				return fmt.Errorf("source shrank while copying")
			}
			return err
		}
		if err := WriteNonZero(out, buf[:n], start); err != nil {
			return err
		}
		start += int64(n)
	}
	return nil
}

// WriteNonZero writes p at off, skipping 4 KiB blocks that are all zero
// (the destination must already read as zeros there, as a new or
// truncated file does), so that they stay holes.
func WriteNonZero(out io.WriterAt, p []byte, off int64) error {
	const block = 4096
	for i := 0; i < len(p); {
		j := min(i+block, len(p))
		if !allZero(p[i:j]) {
			// Extend the run over following non-zero blocks.
			for j < len(p) {
				k := min(j+block, len(p))
				if allZero(p[j:k]) {
					break
				}
				j = k
			}
			if _, err := out.WriteAt(p[i:j], off+int64(i)); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

var zeroBlock [4096]byte

func allZero(p []byte) bool { return bytes.Equal(p, zeroBlock[:len(p)]) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
