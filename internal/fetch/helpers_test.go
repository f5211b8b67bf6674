package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func srcFor(url string, data []byte) Source {
	return Source{URL: url, Size: int64(len(data)), SHA256: sum(data)}
}

// fast are options for tests: quick retries, log lines collected.
func fast(t *testing.T, logs *lines) Options {
	return Options{Backoff: time.Millisecond, Logf: logs.logf(t)}
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) logf(t *testing.T) func(string, ...any) {
	return func(f string, a ...any) {
		s := fmt.Sprintf(f, a...)
		t.Log(s)
		l.mu.Lock()
		l.l = append(l.l, s)
		l.mu.Unlock()
	}
}

func (l *lines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.l, "\n")
}

// server is a real HTTP server on 127.0.0.1 that records each request's
// Range and If-Range headers and hands the request's index to handle.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []http.Header
	stop chan struct{} // closed at cleanup: releases stalled handlers
}

func newServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *server {
	s := &server{stop: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, r.Header.Clone())
		s.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.stop) })
	return s
}

func (s *server) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.reqs...)
}

func (s *server) url() string { return s.URL + "/test-6.12-x86_64.tar.zst" }

// serve answers like a static file server: ranges, If-Range, ETag.
func serve(w http.ResponseWriter, r *http.Request, data []byte, etag string) {
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, "k.tar.zst", time.Unix(1700000000, 0), bytes.NewReader(data))
}

// cutWriter is fault injection, standing in for a link that drops: after
// n body bytes it kills the TCP connection. A real server cannot be made
// to do that on demand.
type cutWriter struct {
	http.ResponseWriter
	n int
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return w.ResponseWriter.Write(p)
	}
	k, _ := w.ResponseWriter.Write(p[:w.n])
	w.n = 0
	rc := http.NewResponseController(w.ResponseWriter)
	rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		conn.Close()
	}
	return k, errors.New("test: connection dropped")
}

// stallWriter is fault injection, standing in for a server that hangs
// mid-body: after n bytes it stops sending until the client goes away.
type stallWriter struct {
	http.ResponseWriter
	n    int
	r    *http.Request
	stop <-chan struct{}
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return w.ResponseWriter.Write(p)
	}
	k, _ := w.ResponseWriter.Write(p[:w.n])
	w.n = 0
	http.NewResponseController(w.ResponseWriter).Flush()
	select {
	case <-w.r.Context().Done():
	case <-w.stop:
	}
	return k, errors.New("test: stalled")
}

// readAll drains rc with small Reads (not WriteTo) and closes it.
func readAll(t *testing.T, rc io.ReadCloser) ([]byte, error) {
	t.Helper()
	defer rc.Close()
	var out bytes.Buffer
	buf := make([]byte, 10000)
	for {
		n, err := rc.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func mustOpen(t *testing.T, ctx context.Context, src Source, opts Options) io.ReadCloser {
	t.Helper()
	rc, err := Open(ctx, src, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return rc
}
