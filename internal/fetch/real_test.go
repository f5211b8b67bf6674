package fetch

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/thaloco/banger/internal/bundletest"
)

// The shared test kernel bundle, fetched over a link that drops half-way,
// decompressed and untarred as it streams: the vmlinux inside comes out
// whole (sizes and hash from shared/kernels/README.md).
func TestRealBundleThroughDrop(t *testing.T) {
	shared, err := bundletest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(shared, "kernels", "test-6.12-x86_64.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	const wantSHA = "4e20bd04283a5e8207117eee0e2fd8750a53db22f468eabe7d2fb277a9bbac31"
	if len(data) != 2380039 || sum(data) != wantSHA {
		t.Fatalf("shared bundle is %d bytes, sha256 %s: not the one README.md describes", len(data), sum(data))
	}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w = &cutWriter{ResponseWriter: w, n: len(data) / 2}
		}
		serve(w, r, data, `"bundle"`)
	})
	var logs lines
	rc := mustOpen(t, t.Context(), srcFor(srv.url(), data), fast(t, &logs))
	defer rc.Close()
	zr, err := zstd.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "vmlinux" {
		t.Fatalf("first entry %v, %v; want vmlinux", hdr, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, tr)
	if err != nil || n != 14244032 {
		t.Fatalf("vmlinux: %d bytes, %v; want 14244032", n, err)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after vmlinux: %v, want the end of the archive", err)
	}
	// The tar ends before the zstd stream does: stop the decoder (its
	// goroutine reads ahead from rc) and drain so the digest check runs.
	zr.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("verifying the bundle: %v", err)
	}
	if len(srv.requests()) != 2 {
		t.Errorf("%d requests, want 2 (one drop, one resume)", len(srv.requests()))
	}
	t.Logf("vmlinux sha256 %s", hex.EncodeToString(h.Sum(nil)))
}

func TestRetryAfterHonoured(t *testing.T) {
	data := payload(1000, 19)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		serve(w, r, data, `"v1"`)
	})
	var logs lines
	began := time.Now()
	if _, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), fast(t, &logs))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Errorf("retried after %s, want the server's 1s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:04:00 GMT": 0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
