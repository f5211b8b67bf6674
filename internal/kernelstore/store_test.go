package kernelstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/thaloco/banger/internal/bundletest"
	"github.com/thaloco/banger/internal/kernelcat"
)

// serveBundle writes b as name in a fresh directory served on 127.0.0.1
// and returns the catalog entry for it.
func serveBundle(t *testing.T, name string, b []byte, f bundletest.Faults) (kernelcat.Entry, *bundletest.Server) {
	t.Helper()
	dir := t.TempDir()
	file := kernelcat.TarballName(name, "x86_64")
	if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := bundletest.Serve(dir, f)
	t.Cleanup(srv.Close)
	return kernelcat.Entry{
		Name: name, Distro: "test", Arch: "x86_64", KernelVersion: "6.12.5",
		URL: srv.URL + "/" + file, SHA256: bundletest.SHA256(b), Size: int64(len(b)),
	}, srv
}

func hidden(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".old-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestConcurrentPulls: several pulls of one kernel at once download it once
// and all end with the same verified install.
func TestConcurrentPulls(t *testing.T) {
	b := bundletest.Full(bundletest.FakeVMLinux("6.12.5", 64<<10))
	e, srv := serveBundle(t, "k1", b, bundletest.Faults{BytesPerSecond: 200 << 10})
	s := New(t.TempDir())
	var wg sync.WaitGroup
	results := make([]PullResult, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Pull(context.Background(), e, PullOptions{})
		}()
	}
	wg.Wait()
	installed := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("pull %d: %v", i, errs[i])
		}
		if !results[i].AlreadyInstalled {
			installed++
		}
	}
	if installed != 1 || srv.Requests.Load() != 1 {
		t.Fatalf("%d pulls installed, %d requests; want 1 and 1", installed, srv.Requests.Load())
	}
	m, err := s.Get("k1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(m.VMLinux())
	if string(got) != bundletest.FakeVMLinux("6.12.5", 64<<10) {
		t.Fatal("installed vmlinux differs from the bundle's")
	}
}

// TestCancelledPullLeavesNothing: Ctrl-C mid-download leaves no kernel and
// no temporary directory; the next pull resumes from the partial download.
func TestCancelledPullLeavesNothing(t *testing.T) {
	b := bundletest.Full(bundletest.FakeVMLinux("6.12.5", 256<<10))
	e, srv := serveBundle(t, "k1", b, bundletest.Faults{BytesPerSecond: 400 << 10})
	s := New(t.TempDir())
	// Ctrl-C once 64 KiB have arrived, well before the end: cancelled by
	// what was received, not after a fixed time, which on a loaded host
	// can pass before the first byte or after the last.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Pull(ctx, e, PullOptions{Progress: func(int64) (io.Writer, func(error)) {
		return &cancelAfter{n: 64 << 10, cancel: cancel}, func(error) {}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "k1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("kernel visible after cancelled pull: %v", err)
	}
	if h := hidden(t, s.Dir()); len(h) != 0 {
		t.Fatalf("leftovers after cancelled pull: %v", h)
	}
	st, err := os.Stat(s.partialPath(e.SHA256))
	if err != nil || st.Size() == 0 || st.Size() >= e.Size {
		t.Fatalf("partial download: %v, %v", st, err)
	}
	before := srv.Ranges.Load()
	if _, err := s.Pull(context.Background(), e, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if srv.Ranges.Load() != before+1 {
		t.Fatalf("second pull did not resume with a Range request")
	}
	if _, err := os.Stat(s.partialPath(e.SHA256)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("partial download not removed after success")
	}
}

// cancelAfter is a progress writer that calls cancel once n bytes have
// gone through it.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n <= 0 {
		w.cancel()
	}
	return len(p), nil
}

// TestLeftoversOfKilledRunsAreCleaned: a run killed with SIGKILL leaves a
// hidden temp dir; the next run on that name removes it and nothing else.
func TestLeftoversOfKilledRunsAreCleaned(t *testing.T) {
	b := bundletest.Minimal(bundletest.FakeVMLinux("6.12.5", 1024))
	e, _ := serveBundle(t, "k1", b, bundletest.Faults{})
	s := New(t.TempDir())
	for _, d := range []string{".tmp-k1-0123456789ab", ".old-k1-0123456789ab", ".tmp-k1-2-0123456789ab", "unrelated"} {
		if err := os.MkdirAll(filepath.Join(s.Dir(), d, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pull(context.Background(), e, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{".tmp-k1-0123456789ab": false, ".old-k1-0123456789ab": false, ".tmp-k1-2-0123456789ab": true, "unrelated": true} {
		_, err := os.Stat(filepath.Join(s.Dir(), d))
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", d, err == nil, want)
		}
	}
}

// TestReplaceIsAtomic: replacing an installed kernel swaps the directory in
// one step and leaves no old tree behind.
func TestReplaceIsAtomic(t *testing.T) {
	s := New(t.TempDir())
	e1, _ := serveBundle(t, "k1", bundletest.Full(bundletest.FakeVMLinux("6.12.5", 1024)), bundletest.Faults{})
	if _, err := s.Pull(context.Background(), e1, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	e2, _ := serveBundle(t, "k1", bundletest.Minimal(bundletest.FakeVMLinux("6.12.6", 1024)), bundletest.Faults{})
	e2.KernelVersion = "6.12.6"
	res, err := s.Pull(context.Background(), e2, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replaced || res.Manifest.KernelVersion != "6.12.6" || res.Manifest.Initrd() != "" {
		t.Fatalf("replace result %+v", res)
	}
	if h := hidden(t, s.Dir()); len(h) != 0 {
		t.Fatalf("leftovers after replace: %v", h)
	}
}

// TestPullRefusesToReplaceImport: an imported kernel is not silently
// overwritten by the catalog's.
func TestPullRefusesToReplaceImport(t *testing.T) {
	s := New(t.TempDir())
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "vmlinux"), []byte(bundletest.FakeVMLinux("6.12.1", 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), "k1", src, ImportOptions{Distro: "d", Arch: "x86_64"}); err != nil {
		t.Fatal(err)
	}
	e, _ := serveBundle(t, "k1", bundletest.Minimal(bundletest.FakeVMLinux("6.12.5", 512)), bundletest.Faults{})
	var ie *InstalledError
	if _, err := s.Pull(context.Background(), e, PullOptions{}); !errors.As(err, &ie) || !ie.Imported {
		t.Fatalf("err = %v, want the refusal to replace an import", err)
	}
	if _, err := s.Pull(context.Background(), e, PullOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// TestReturnedManifestMatchesDisk: Pull and Import return the manifest
// they built in memory; it must be what Get reads back from disk.
func TestReturnedManifestMatchesDisk(t *testing.T) {
	s := New(t.TempDir())
	e, _ := serveBundle(t, "k1", bundletest.Full(bundletest.FakeVMLinux("6.12.5", 1024)), bundletest.Faults{})
	res, err := s.Pull(context.Background(), e, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "vmlinux"), []byte(bundletest.FakeVMLinux("6.12.1", 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	imp, err := s.Import(context.Background(), "k2", src, ImportOptions{Distro: "d", Arch: "x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Manifest{res.Manifest, imp} {
		disk, err := s.Get(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, disk) {
			t.Errorf("returned manifest %+v (dir %s)\ndiffers from Get's %+v (dir %s)", m, m.Dir(), disk, disk.Dir())
		}
		if m.Dir() != filepath.Join(s.Dir(), m.Name) {
			t.Errorf("Dir() = %q, want %q", m.Dir(), filepath.Join(s.Dir(), m.Name))
		}
	}
}

func TestReadKernelVersion(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vmlinux")
	// Put the banner across a 1 MiB chunk boundary.
	body := strings.Repeat("x", 1<<20-10) + "Linux version 6.12.117-generic (root@b) (gcc 12) #1"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := ReadKernelVersion(p)
	if err != nil || v != "6.12.117-generic" {
		t.Fatalf("got %q, %v", v, err)
	}
}
