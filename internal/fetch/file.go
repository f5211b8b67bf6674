package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
)

// fileSource reads a local file. Its failures are never retried.
type fileSource struct {
	path string
	name string
	size int64
}

func newFileSource(u *url.URL, name string, size int64) (*fileSource, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return nil, fmt.Errorf("downloading %s: a file URL needs an absolute path (hint: file:///path/to/file)", name)
	}
	return &fileSource{path: u.Path, name: name, size: size}, nil
}

func (s *fileSource) close() {}

func (s *fileSource) open(_ context.Context, offset int64) (io.ReadCloser, int64, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, 0, permanent(fmt.Errorf("downloading %s: %w", s.name, err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", s.path)
	}
	if err == nil && fi.Size() != s.size {
		f.Close()
		return nil, 0, &SizeError{URL: s.name, Expected: s.size, Actual: fi.Size()}
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, permanent(fmt.Errorf("downloading %s: %w", s.name, err))
	}
	return fileBody{f, s.name}, offset, nil
}

// fileBody marks read errors as permanent: a local disk fault is not
// something to retry.
type fileBody struct {
	f    *os.File
	name string
}

func (b fileBody) Read(p []byte) (int, error) {
	n, err := b.f.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = permanent(fmt.Errorf("downloading %s: %w", b.name, err))
	}
	return n, err
}

func (b fileBody) Close() error { return b.f.Close() }
