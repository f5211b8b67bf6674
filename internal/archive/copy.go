package archive

import (
	"archive/tar"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"golang.org/x/sys/unix"
)

// file writes a regular file: small ones go to the writers, large ones are
// streamed. Neither is flushed (see writeback.go).
func (x *extractor) file(h *tar.Header, name string, body io.Reader) error {
	if x.written += h.Size; x.written > x.lim.MaxBytes {
		// Redundant with the cap on tar bytes while sparse entries are
		// refused; kept so no expansion can outgrow MaxBytes.
		return errTooLarge(x.lim.MaxBytes)
	}
	dir, base, owned, err := x.place(name)
	if err != nil {
		return err
	}
	perm := fs.FileMode(h.Mode)&fs.ModePerm&^0o022 | 0o600 // never group/other-writable
	f := &File{Path: name, Mode: perm.String()}
	x.entries[name] = f
	if h.Size <= smallFile {
		data := x.w.buffer(int(h.Size))
		if n, err := fill(body, data); n < len(data) || (err != nil && !errors.Is(err, io.EOF)) {
			x.w.free <- data
			if owned {
				_ = unix.Close(dir)
			}
			return cmp.Or(err, io.ErrUnexpectedEOF)
		}
		dirName := name[:len(name)-len(base)] // "" or "a/b/"
		x.w.submit(&job{dir: dir, ownsDir: owned, base: base, perm: perm, umask: x.umask, data: data, f: f}, dirName)
		return nil
	}

	fd, err := createFile(dir, base, perm, x.umask)
	if owned {
		_ = unix.Close(dir)
	}
	if err != nil {
		return fmt.Errorf("creating %q: %w", name, err)
	}
	var started int64
	if f.Size, f.SHA256, started, err = x.stream(name, fd, body); err != nil {
		_ = unix.Close(fd)
		return err
	}
	return closeLarge(fd, name, started, f.Size)
}

// fill reads into buf until it is full or r returns an error; unlike
// io.ReadFull it passes io.EOF and io.ErrUnexpectedEOF through unchanged
// (the tar reader reports a truncated entry with the latter).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
