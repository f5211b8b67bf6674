package fetch

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/thaloco/banger/internal/bundletest"
)

const benchSize = 100 << 20

func benchServer(b *testing.B, data []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "k.tar.zst", time.Unix(1700000000, 0), bytes.NewReader(data))
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/k.tar.zst"
}

// BenchmarkFetch downloads, hashes and verifies a 100 MiB body from
// loopback; the MB/s column is the throughput.
func BenchmarkFetch(b *testing.B) {
	data := payload(benchSize, 99)
	src := srcFor(benchServer(b, data), data)
	b.SetBytes(benchSize)
	for b.Loop() {
		rc, err := Open(b.Context(), src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkBaseline is the same transfer as a plain GET hashed inline,
// for comparison: what fetch adds (or saves) over the simplest code.
func BenchmarkBaseline(b *testing.B) {
	data := payload(benchSize, 99)
	url := benchServer(b, data)
	b.SetBytes(benchSize)
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(h, io.Discard), resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

// zstdBody is ~100 MB of tar data (copies of the shared test bundle's
// real vmlinux) compressed with zstd: the shape of a real kernel bundle.
func zstdBody(b *testing.B) (body []byte, raw int64) {
	shared, err := bundletest.SharedDir()
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(shared, "kernels", "test-6.12-x86_64.tar.zst"))
	if err != nil {
		b.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	tarball, err := dec.DecodeAll(bundle, nil)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	var all []byte
	for len(all) < benchSize {
		all = append(all, tarball...)
	}
	return enc.EncodeAll(all, nil), int64(len(all))
}

// BenchmarkFetchZstd is fetch feeding a zstd decoder, as a pull does;
// MB/s counts decompressed bytes.
func BenchmarkFetchZstd(b *testing.B) {
	body, raw := zstdBody(b)
	src := srcFor(benchServer(b, body), body)
	b.SetBytes(raw)
	for b.Loop() {
		rc, err := Open(b.Context(), src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		zr, err := zstd.NewReader(rc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
		zr.Close()
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkBaselineZstd is the same with the body hashed inline in the
// decoder's reads (no read-ahead goroutine of ours), for comparison.
func BenchmarkBaselineZstd(b *testing.B) {
	body, raw := zstdBody(b)
	url := benchServer(b, body)
	b.SetBytes(raw)
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		zr, err := zstd.NewReader(io.TeeReader(resp.Body, h))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
		zr.Close()
		resp.Body.Close()
	}
}
