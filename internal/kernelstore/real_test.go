package kernelstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/thaloco/banger/internal/bundletest"
	"github.com/thaloco/banger/internal/kernelcat"
)

// TestPullRealBundle installs the real test kernel bundle from shared/
// through a file:// URL and checks the version read from its vmlinux.
func TestPullRealBundle(t *testing.T) {
	shared, err := bundletest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(shared, "kernels", "test-6.12-x86_64.tar.zst")
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	e := kernelcat.Entry{
		Name: "test-6.12", Distro: "test", Arch: "x86_64", KernelVersion: "6.12.117",
		URL: "file://" + tarball, SHA256: bundletest.SHA256(data), Size: int64(len(data)),
	}
	s := New(t.TempDir())
	res, err := s.Pull(context.Background(), e, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(res.Manifest.VMLinux())
	if err != nil || st.Size() != 14244032 {
		t.Fatalf("vmlinux: %v %v", st, err)
	}
	v, err := ReadKernelVersion(res.Manifest.VMLinux())
	if err != nil || v != "6.12.117" {
		t.Fatalf("version %q, %v", v, err)
	}
}
