package fetch

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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
