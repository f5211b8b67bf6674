package kernelstore

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/thaloco/banger/internal/bundletest"
	"github.com/thaloco/banger/internal/kernelcat"
)

// BenchmarkPull pulls a bundle with a 64 MiB vmlinux (half random, half
// zeros, so it compresses about 2:1 like a kernel) from 127.0.0.1.
func BenchmarkPull(b *testing.B) {
	body := make([]byte, 64<<20)
	_, _ = rand.Read(body[:32<<20])
	bundle := bundletest.Minimal(string(body))
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k-x86_64.tar.zst"), bundle, 0o644); err != nil {
		b.Fatal(err)
	}
	srv := bundletest.Serve(dir, bundletest.Faults{})
	defer srv.Close()
	e := kernelcat.Entry{Name: "k", Arch: "x86_64", URL: srv.URL + "/k-x86_64.tar.zst", SHA256: bundletest.SHA256(bundle), Size: int64(len(bundle))}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range b.N {
		s := New(b.TempDir())
		if _, err := s.Pull(context.Background(), e, PullOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
