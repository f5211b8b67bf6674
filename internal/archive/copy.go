package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// copyBufSize is the chunk read from the tar stream, hashed and written at
// once: large enough to keep syscalls rare, small enough to stay in cache
// between the hash and the write.
const copyBufSize = 256 << 10

// writeFile creates name (which must not exist) with mode perm and copies
// body into it, hashing on the way, checking ctx between chunks.
func (x *extractor) writeFile(name string, perm fs.FileMode, body io.Reader) (*File, error) {
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating %q: %w", name, err)
	}
	h := sha256.New()
	var n int64
	for {
		if err := x.ctx.Err(); err != nil {
			f.Close()
			return nil, err
		}
		nr, rerr := fill(body, x.buf)
		if nr > 0 {
			h.Write(x.buf[:nr])
			if _, err := f.Write(x.buf[:nr]); err != nil {
				f.Close()
				return nil, fmt.Errorf("writing %q: %w", name, err)
			}
			n += int64(nr)
			// Redundant with the cap on tar bytes while sparse entries
			// are refused; kept so no expansion can outgrow MaxBytes.
			if x.written += int64(nr); x.written > x.lim.MaxBytes {
				f.Close()
				return nil, errTooLarge(x.lim.MaxBytes)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.Close()
			return nil, rerr
		}
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return nil, fmt.Errorf("setting mode of %q: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing %q: %w", name, err)
	}
	return &File{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Mode: perm.String()}, nil
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
