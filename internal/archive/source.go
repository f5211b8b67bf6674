package archive

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// source is the tar stream (decompressed, for a bundle): it counts the bytes
// read, stops at Limits.MaxBytes and marks errors coming from the stream
// (the zstd decoder, or the reader of a plain tar) so they can be told apart
// from tar errors.
type source struct {
	r   io.Reader
	n   int64 // bytes returned so far
	max int64
	// in counts the compressed bytes the zstd decoder read (nil for a
	// plain tar); past RatioGrace, n may be at most ratio times in.n.
	in    *counter
	ratio int64
	err   error // a limit error, returned by every later Read
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// limitError reports a bundle past one of its Limits; it matches
// ErrLimitExceeded and its cause with errors.Is.
type limitError struct {
	msg   string
	cause error
}

func (e *limitError) Error() string   { return e.msg }
func (e *limitError) Unwrap() []error { return []error{ErrLimitExceeded, e.cause} }

func errTooDense(out, in, limit int64) error {
	return &limitError{msg: fmt.Sprintf("bundle expands %d-fold (%d bytes of tar from the first %d compressed bytes), over the %d-fold limit (hint: no real kernel bundle compresses that well, so this looks like a decompression bomb; raise Limits.MaxRatio if it is genuine)", out/max(in, 1), out, in, limit)}
}

func errTooLarge(max int64) error {
	return &limitError{msg: fmt.Sprintf("bundle expands to more than %s of tar data (hint: the cap guards against decompression bombs; raise Limits.MaxBytes for a larger bundle)", size(uint64(max)))}
}

// streamError wraps an error from the zstd decoder or the plain tar reader.
type streamError struct{ err error }

func (e streamError) Error() string { return e.err.Error() }
func (e streamError) Unwrap() error { return e.err }

func (s *source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if room := s.max - s.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n > s.max {
		s.err = errTooLarge(s.max)
		return n - int(s.n-s.max), s.err
	}
	// Checked on every read, so a bomb is stopped as soon as it crosses
	// the ratio, not after it was written out. (Divided, not multiplied:
	// a huge MaxRatio must not overflow.)
	if s.in != nil && s.n > RatioGrace && s.n/s.ratio > s.in.n {
		s.err = errTooDense(s.n, s.in.n, s.ratio)
		return n, s.err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = streamError{err}
	}
	return n, err
}

// explain turns an error met while reading the stream into one line that
// says which layer failed and, where known, how to fix it.
func (x *extractor) explain(err error) error {
	lim := x.lim
	var se streamError
	switch {
	case errors.Is(err, ErrLimitExceeded):
		return err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		// The decoder's memory cap is left at its 64 GiB default, far above
		// any window it allows, so both errors mean the window is too big.
		return &limitError{cause: err, msg: fmt.Sprintf("decompressing bundle: the zstd window is larger than the %s limit (hint: recompress with a smaller window, e.g. without --long, or raise Limits.MaxWindow)", size(lim.MaxWindow))}
	case errors.As(err, &se) && x.zstd:
		return fmt.Errorf("decompressing bundle: %w (hint: a bundle is a zstd-compressed tar, <name>-<arch>.tar.zst)", se.err)
	case errors.As(err, &se):
		return fmt.Errorf("reading bundle tar: %w", se.err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("reading bundle tar: %w (hint: the bundle is truncated)", err)
	default:
		return fmt.Errorf("reading bundle tar: %w", err)
	}
}
