package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHappyPath(t *testing.T) {
	data := payload(3<<20+12345, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) { serve(w, r, data, `"v1"`) })
	file := filepath.Join(t.TempDir(), "k.tar.zst")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, url string }{
		{"http", srv.url()},
		{"file", "file://" + file},
	} {
		t.Run(tc.name+"/Read", func(t *testing.T) {
			var progress countWriter
			opts := Options{Progress: &progress}
			got, err := readAll(t, mustOpen(t, t.Context(), srcFor(tc.url, data), opts))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, not the %d served", len(got), len(data))
			}
			if progress.n != int64(len(data)) {
				t.Errorf("progress saw %d bytes, want %d", progress.n, len(data))
			}
		})
		t.Run(tc.name+"/WriteTo", func(t *testing.T) {
			rc := mustOpen(t, t.Context(), srcFor(tc.url, data), Options{})
			defer rc.Close()
			var out bytes.Buffer
			if _, err := io.Copy(&out, rc); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("got %d bytes, not the %d served", out.Len(), len(data))
			}
		})
	}
}

// TestFilePartialRemoved: a file:// download does not use Partial, but a
// partial left by an earlier http:// download of the same file is removed
// once the file was delivered and verified (kernelstore relies on it).
func TestFilePartialRemoved(t *testing.T) {
	data := payload(1<<20, 5)
	dir := t.TempDir()
	file := filepath.Join(dir, "k.tar.zst")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "k.part")
	if err := os.WriteFile(part, data[:4096], 0o600); err != nil {
		t.Fatal(err)
	}
	rc := mustOpen(t, t.Context(), srcFor("file://"+file, data), Options{Partial: part})
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	// Checked before Close: the stream's end already guarantees it.
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file after a verified file:// download: %v, want it removed", err)
	}
	rc.Close()
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func TestDigestMismatch(t *testing.T) {
	data := payload(1<<20, 2)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) { serve(w, r, data, `"v1"`) })
	src := srcFor(srv.url(), data)
	src.SHA256 = sum([]byte("something else"))
	part := filepath.Join(t.TempDir(), "k.part")
	got, err := readAll(t, mustOpen(t, t.Context(), src, Options{Partial: part}))
	var de *DigestError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a *DigestError", err)
	}
	if de.URL != srv.url() || de.Expected != src.SHA256 || de.Actual != sum(data) {
		t.Errorf("DigestError = %+v; want URL %s, expected %s, actual %s", de, srv.url(), src.SHA256, sum(data))
	}
	for _, want := range []string{srv.url(), src.SHA256, sum(data), "hint:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(got) != len(data) {
		t.Errorf("delivered %d bytes before the error, want %d", len(got), len(data))
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file after a digest mismatch: %v, want it removed", err)
	}
}

func TestSizeErrors(t *testing.T) {
	data := payload(1<<20, 3)
	longer := append(append([]byte(nil), data...), payload(1<<20, 4)...)
	// chunked writes the body without Content-Length, so only the byte
	// count can catch it.
	chunked := func(body []byte) func(w http.ResponseWriter, r *http.Request, _ int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			for b := body; len(b) > 0; b = b[min(len(b), 64<<10):] {
				w.Write(b[:min(len(b), 64<<10)])
				http.NewResponseController(w).Flush()
			}
		}
	}
	withLength := func(n int) func(w http.ResponseWriter, r *http.Request, _ int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.Write(longer[:n])
		}
	}
	for _, tc := range []struct {
		name     string
		handle   func(w http.ResponseWriter, r *http.Request, _ int)
		actual   int64 // 0: more than expected
		maxBytes int   // most bytes the reader may see before the error
	}{
		{"longer chunked body", chunked(longer), 0, len(data)},
		{"shorter chunked body", chunked(data[:len(data)-1]), int64(len(data) - 1), len(data) - 1},
		{"longer Content-Length", withLength(len(data) + 1), int64(len(data) + 1), 0},
		{"shorter Content-Length", withLength(len(data) - 10), int64(len(data) - 10), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.handle)
			var logs lines
			got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), fast(t, &logs)))
			var se *SizeError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *SizeError", err)
			}
			if se.URL != srv.url() || se.Expected != int64(len(data)) {
				t.Errorf("SizeError = %+v", se)
			}
			if tc.actual == 0 && se.Actual <= se.Expected || tc.actual != 0 && se.Actual != tc.actual {
				t.Errorf("SizeError.Actual = %d, want %d (0: more than expected)", se.Actual, tc.actual)
			}
			if len(got) > tc.maxBytes {
				t.Errorf("reader saw %d bytes, want at most %d", len(got), tc.maxBytes)
			}
			if n := len(srv.requests()); n != 1 {
				t.Errorf("%d requests, want 1: a size mismatch is not retried", n)
			}
		})
	}
}

func TestFileSizeMismatch(t *testing.T) {
	data := payload(1000, 5)
	file := filepath.Join(t.TempDir(), "k.tar.zst")
	if err := os.WriteFile(file, data[:999], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readAll(t, mustOpen(t, t.Context(), srcFor("file://"+file, data), Options{}))
	var se *SizeError
	if !errors.As(err, &se) || se.Actual != 999 || se.Expected != 1000 {
		t.Fatalf("got %v, want a SizeError 1000/999", err)
	}
}

func TestTransientStatusRetried(t *testing.T) {
	data := payload(1<<20, 6)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		serve(w, r, data, `"v1"`)
	})
	var logs lines
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), fast(t, &logs)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("output differs from the served bytes")
	}
	if n := len(srv.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if n := strings.Count(logs.all(), "503 Service Unavailable; retrying"); n != 2 {
		t.Errorf("%d retry lines, want 2:\n%s", n, logs.all())
	}
}

func TestRetriesExhausted(t *testing.T) {
	data := payload(1000, 7)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Error(w, "busy", http.StatusTooManyRequests)
	})
	var logs lines
	opts := fast(t, &logs)
	opts.Retries = 2
	_, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), opts))
	var st *StatusError
	if !errors.As(err, &st) || st.Code != http.StatusTooManyRequests {
		t.Fatalf("got %v, want a 429 StatusError", err)
	}
	if !strings.Contains(err.Error(), "giving up after 3 failed attempts") {
		t.Errorf("error %q does not say it gave up", err)
	}
	if n := len(srv.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (1 + 2 retries)", n)
	}
}

func TestPermanentStatusNotRetried(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusForbidden, http.StatusGone, http.StatusBadRequest} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Error(w, "no", code)
			})
			var logs lines
			_, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), []byte("x")), fast(t, &logs)))
			var st *StatusError
			if !errors.As(err, &st) || st.Code != code {
				t.Fatalf("got %v, want a StatusError %d", err, code)
			}
			want := "downloading " + srv.url() + ": " + strconv.Itoa(code) + " " + http.StatusText(code)
			if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line starting %q", err, want)
			}
			if gone := code == http.StatusNotFound || code == http.StatusGone; st.Gone() != gone {
				t.Errorf("Gone() = %v for %d", st.Gone(), code)
			}
			if refused := code == http.StatusForbidden; st.Refused() != refused {
				t.Errorf("Refused() = %v for %d", st.Refused(), code)
			}
			if n := len(srv.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestBadSource(t *testing.T) {
	good := sum(nil)
	for _, tc := range []struct {
		src  Source
		want string
	}{
		{Source{URL: "ftp://h/k.tar.zst", Size: 1, SHA256: good}, `unsupported URL scheme "ftp"`},
		{Source{URL: "http://h/k.tar.zst", Size: 0, SHA256: good}, "expected size 0 is not positive"},
		{Source{URL: "http://h/k.tar.zst", Size: 1, SHA256: strings.ToUpper(good)}, "not 64 lower-case hex"},
		{Source{URL: "http://h/k.tar.zst", Size: 1, SHA256: ""}, "not 64 lower-case hex"},
		{Source{URL: "file://host/k.tar.zst", Size: 1, SHA256: good}, "needs an absolute path"},
		{Source{URL: "http://h/%zz", Size: 1, SHA256: good}, "bad URL"},
	} {
		rc, err := Open(t.Context(), tc.src, Options{})
		if err == nil {
			rc.Close()
			t.Errorf("Open(%+v) succeeded", tc.src)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %q, want it to mention %q", tc.src, err, tc.want)
		}
	}
}

func TestCancelStopsPromptly(t *testing.T) {
	data := payload(3<<20, 8)
	var srv *server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		serve(&stallWriter{ResponseWriter: w, n: 100 << 10, r: r, stop: srv.stop}, r, data, `"v1"`)
	})
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			rc := mustOpen(t, ctx, srcFor(srv.url(), data), Options{})
			buf := make([]byte, 1000)
			if _, err := rc.Read(buf); err != nil { // the server sent 100 KiB: data flows
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, rc)
				errc <- err
			}()
			time.Sleep(50 * time.Millisecond) // let the reader block on the stalled server
			began := time.Now()
			if how == "cancel" {
				cancel()
			} else {
				rc.Close()
			}
			select {
			case err := <-errc:
				if how == "cancel" && !errors.Is(err, context.Canceled) {
					t.Errorf("got %v, want context.Canceled", err)
				}
				if err == nil || !strings.Contains(err.Error(), srv.url()) {
					t.Errorf("got %v, want an error naming the URL", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the blocked read did not return within 30s")
			}
			if err := rc.Close(); err != nil {
				t.Error(err)
			}
			// Below the longest retry back-off (5s) and the stall
			// timeout (60s), with room for a loaded host running the
			// race detector.
			if d := time.Since(began); d > 3*time.Second {
				t.Errorf("stopping took %s", d)
			}
		})
	}
}
