package archive

import (
	"archive/tar"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// file writes a regular file: small ones go to the writers, large ones are
// streamed.
func (x *extractor) file(h *tar.Header, name string, body io.Reader) error {
	if x.written += h.Size; x.written > x.lim.MaxBytes {
		// Redundant with the cap on tar bytes while sparse entries are
		// refused; kept so no expansion can outgrow MaxBytes.
		return errTooLarge(x.lim.MaxBytes)
	}
	dir, base, err := x.place(name)
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
			return cmp.Or(err, io.ErrUnexpectedEOF)
		}
		x.w.submit(&job{dir: dir, base: base, perm: perm, data: data, f: f})
		return nil
	}

	out, err := dir.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating %q: %w", name, err)
	}
	if f.Size, f.SHA256, err = x.stream(name, out, body); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(perm); err != nil {
		out.Close()
		return fmt.Errorf("setting mode of %q: %w", name, err)
	}
	// The writers flush and close it while the tar loop reads on.
	x.w.submit(&job{f: f, flush: out})
	return nil
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
