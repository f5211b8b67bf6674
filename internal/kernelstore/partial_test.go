package kernelstore

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/bundletest"
)

// TestPartialDownloadsPruned: partial downloads not written to for more
// than a week are pruned when the store is listed or pulled into; newer
// ones stay for a later pull to resume, and so does an old one that the
// pull resumes from.
func TestPartialDownloadsPruned(t *testing.T) {
	s := New(t.TempDir())
	if err := os.MkdirAll(s.partialDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	put := func(name string, data []byte, age time.Duration) {
		t.Helper()
		p := filepath.Join(s.partialDir(), name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		t.Helper()
		ents, err := os.ReadDir(s.partialDir())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	day := 24 * time.Hour
	put("aaaa.tar.zst.part", []byte("stale"), 8*day)
	put("bbbb.tar.zst.part", []byte("recent"), 6*day)
	if _, err := s.List(); err != nil {
		t.Fatal(err)
	}
	if got, want := left(), []string{"bbbb.tar.zst.part"}; !slices.Equal(got, want) {
		t.Fatalf("after List, .partial holds %v, want %v", got, want)
	}

	// A pull resumes from its own partial download even when it is older
	// than a week, and prunes the other stale ones.
	b := bundletest.Minimal(bundletest.FakeVMLinux("6.12.5", 64<<10))
	e, srv := serveBundle(t, "k1", b, bundletest.Faults{})
	put(filepath.Base(s.partialPath(e.SHA256)), b[:len(b)/2], 30*day)
	put("cccc.tar.zst.part", []byte("stale"), 8*day)
	if _, err := s.Pull(context.Background(), e, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if srv.Ranges.Load() != 1 {
		t.Errorf("the pull made %d Range requests, want 1: it did not resume from its month-old partial download", srv.Ranges.Load())
	}
	if got, want := left(), []string{"bbbb.tar.zst.part"}; !slices.Equal(got, want) {
		t.Fatalf("after Pull, .partial holds %v, want %v", got, want)
	}
}
