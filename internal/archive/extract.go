package archive

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// File is one installed entry, recorded in the kernel manifest.
type File struct {
	Path       string `json:"path"`                  // slash-separated, relative to the bundle root
	Size       int64  `json:"size"`                  // regular files
	SHA256     string `json:"sha256,omitempty"`      // regular files, lower-case hex
	Mode       string `json:"mode"`                  // fs.FileMode.String(), e.g. "-rw-r--r--", "Lrwxrwxrwx", "drwxr-xr-x"
	LinkTarget string `json:"link_target,omitempty"` // symlinks
}

// ExtractBundle decompresses the zstd stream r and extracts the tar inside
// into dir (an existing empty directory), never writing outside it,
// enforcing the bundle rules described in the package documentation. It
// returns the entries written, directories included, sorted by Path. The
// files are not flushed to disk: the caller does it, once (see the package
// documentation).
//
// It reads the tar to its end-of-archive marker and then the rest of the
// decompressed stream, which may hold only zero padding, so the zstd frame
// checksums are verified; it does not necessarily read r to EOF, and it has
// stopped reading r when it returns, so the caller may drain r afterwards to
// finish hash verification. ctx is checked between entries and during long
// copies; a Read on r that blocks is the caller's to interrupt.
//
// On error, dir may hold a partial extraction: the caller removes it.
func ExtractBundle(ctx context.Context, r io.Reader, dir string, lim Limits) ([]File, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in := &counter{r: r}
	dec, err := zstd.NewReader(in, zstd.WithDecoderMaxWindow(lim.MaxWindow), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("starting zstd decoder: %w", err)
	}
	defer dec.Close()
	return extract(ctx, &source{r: dec, max: lim.MaxBytes, in: in, ratio: lim.MaxRatio}, dir, lim)
}

// ExtractTar is ExtractBundle for an uncompressed tar stream r: it extracts
// the tar into dir (an existing empty directory), never writing outside
// it, enforcing the same bundle rules and Limits (MaxWindow is unused), and
// returns the entries written, directories included, sorted by Path. Like
// ExtractBundle, it leaves flushing them to disk to the caller.
//
// It reads the tar to its end-of-archive marker and then r to EOF, which
// may hold only zero padding (such as tar's record padding): anything else
// after the marker is an error, as is a stream that ends without the marker.
// ctx is checked between entries and during long copies; a Read on r that
// blocks is the caller's to interrupt.
//
// On error, dir may hold a partial extraction: the caller removes it.
func ExtractTar(ctx context.Context, r io.Reader, dir string, lim Limits) ([]File, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return extract(ctx, &source{r: r, max: lim.MaxBytes}, dir, lim)
}

// extract is the body shared by ExtractBundle and ExtractTar: src is the
// tar stream (decompressed when src.in is set, which the error messages
// tell), lim has its defaults filled in.
func extract(ctx context.Context, src *source, dir string, lim Limits) ([]File, error) {
	var rootFD int
	err := ignoringEINTR(func() (err error) {
		rootFD, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("opening extraction directory: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	defer func() { _ = unix.Close(rootFD) }()

	x := &extractor{
		ctx:      ctx,
		rootFD:   rootFD,
		umask:    readUmask(),
		lim:      lim,
		zstd:     src.in != nil,
		entries:  make(map[string]*File),
		implicit: make(map[string]bool),
		links:    make(map[string]string),
		dirs:     make(map[string]int),
	}
	wb := &writeback{fd: rootFD}
	x.w = startWriters(ctx, wb)
	err = x.run(src)
	// Every write, and any write-back started in the background, is done
	// before extract returns and the caller looks at, or removes, dir.
	werr := x.w.wait()
	wb.wait()
	x.closeDirs()
	if err = cmp.Or(err, werr); err != nil {
		return nil, err
	}
	files := make([]File, 0, len(x.entries))
	for _, f := range x.entries {
		files = append(files, *f)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// run reads every tar entry, then checks what only the whole archive tells.
func (x *extractor) run(src *source) error {
	tr := tar.NewReader(src)
	var entryEnd int64 // offset of the end of the last entry, padding included
	for {
		if err := cmp.Or(x.ctx.Err(), x.w.failed()); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.explain(err)
		}
		if err := x.add(h, tr); err != nil {
			// Errors reading the entry's body come from the stream; the
			// others (rules, limits, ctx, the file system) say it all.
			if errors.As(err, new(streamError)) || errors.Is(err, io.ErrUnexpectedEOF) {
				return x.explain(err)
			}
			return err
		}
		entryEnd = (src.n + blockSize - 1) / blockSize * blockSize
	}
	if src.n == 0 {
		if !x.zstd {
			return errors.New("reading bundle tar: the tar stream is empty (hint: a bundle tar holds vmlinux at its root)")
		}
		return errors.New("reading bundle: the bundle is empty (hint: a bundle is a zstd-compressed tar holding vmlinux)")
	}
	// Go's tar reader also returns io.EOF for a stream that stops at an
	// entry boundary, and after a single zero block; the end-of-archive
	// marker is exactly two zero blocks.
	if src.n != entryEnd+2*blockSize {
		return fmt.Errorf("reading bundle tar: no end-of-archive marker after %d bytes (hint: the bundle is truncated)", entryEnd)
	}
	if err := x.drain(src); err != nil {
		return err
	}
	if _, ok := x.entries[vmlinux]; !ok {
		return unsafeEntry(vmlinux, "required file is missing", "a bundle needs a vmlinux regular file at the archive root")
	}
	for _, link := range slices.Sorted(maps.Keys(x.links)) {
		if err := checkSymlink(x.links, link); err != nil {
			return symlinkError(link, x.links[link], err)
		}
	}
	return nil
}

const blockSize = 512

// drain reads the tar stream after its end marker to its end, so the zstd
// checksums of a bundle are verified; only zero padding may follow a tar.
func (x *extractor) drain(src *source) error {
	var buf [16 << 10]byte
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(buf[:])
		if len(bytes.TrimLeft(buf[:n], "\x00")) != 0 {
			if !x.zstd {
				return errors.New("reading bundle tar: data after the end-of-archive marker (hint: a bundle tar is one tar stream)")
			}
			return errors.New("reading bundle tar: data after the end-of-archive marker (hint: a bundle is one tar stream, compressed)")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return x.explain(err)
		}
	}
}
