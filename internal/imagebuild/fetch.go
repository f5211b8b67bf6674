package imagebuild

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// openLayer returns the uncompressed tar stream of layer l. Bytes read from
// the source (compressed, as they arrive) are counted into counter. The
// stream is decompressed in its own goroutine so decompression overlaps
// with writing files.
func openLayer(s *source, l v1.Layer, counter io.Writer) (io.ReadCloser, error) {
	if s.Uncompressed {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		return async(readCloser{io.TeeReader(rc, counter), rc}), nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	r := io.Reader(io.TeeReader(rc, counter))
	if s.Kind == "oci" {
		// Blobs read from a local layout are not checked by ggcr.
		d, err := l.Digest()
		if err != nil {
			rc.Close()
			return nil, err
		}
		r = &verifyReader{r: r, want: d, h: sha256.New()}
	}
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(4)
	var dec io.Reader = br
	var closeDec func()
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading gzip layer: %w", err)
		}
		dec, closeDec = zr, func() { _ = zr.Close() }
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(false))
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading zstd layer: %w", err)
		}
		dec, closeDec = zr, zr.Close
	}
	return async(readCloser{dec, closerFunc(func() error {
		if closeDec != nil {
			closeDec()
		}
		return rc.Close()
	})}), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// verifyReader checks the sha256 of everything read against want at EOF.
type verifyReader struct {
	r    io.Reader
	want v1.Hash
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	_, _ = v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("layer %s is corrupt: its content hashes to sha256:%s", v.want, got)
		}
	}
	return n, err
}

// async reads rc in a goroutine through a pipe, in large chunks, and
// returns a buffered reader of the other end.
func async(rc io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.CopyBuffer(pw, rc, make([]byte, 1<<20))
		pw.CloseWithError(err)
	}()
	return readCloser{bufio.NewReaderSize(pr, 1<<20), closerFunc(func() error {
		_ = pr.Close() // stops the copier if the reader quit early
		<-done
		return rc.Close()
	})}
}
