// Package guesttest gives tests what they need to boot real guests: the
// shared test kernel bundle and small busybox root filesystems built with
// mkfs.ext4 -d. It is imported only by tests.
package guesttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/kernelstore"
)

// KernelBundleName is the shared test kernel bundle's file name.
const KernelBundleName = "test-6.12-x86_64.tar.zst"

// Kernel9PBundleName is the shared test kernel with 9p over virtio.
const Kernel9PBundleName = "test9p-6.12-x86_64.tar.zst"

// SharedDir is the shared/ directory beside the repository:
// $BANGER_SHARED_DIR if set, else <repo root>/../shared.
func SharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("BANGER_SHARED_DIR"); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	// file is <repo>/internal/guesttest/guesttest.go.
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
}

// KernelBundle is the path of the shared test kernel bundle.
func KernelBundle(t testing.TB) string {
	t.Helper()
	return bundle(t, KernelBundleName)
}

func bundle(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(SharedDir(t), "kernels", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test kernel bundle: %v (hint: set BANGER_SHARED_DIR to the directory holding kernels/%s)", err, name)
	}
	return p
}

// ExtractKernel unpacks the test bundle into dir and returns the path of
// its vmlinux.
func ExtractKernel(t testing.TB, dir string) string {
	t.Helper()
	return extract(t, KernelBundle(t), dir)
}

func extract(t testing.TB, bundlePath, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "tar", "--zstd", "-xf", bundlePath, "-C", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting the test kernel: %v: %s", err, out)
	}
	return filepath.Join(dir, "vmlinux")
}

// InstallKernel imports the test kernel into the kernel store at
// kernelsDir under name.
func InstallKernel(t testing.TB, kernelsDir, name string) {
	t.Helper()
	InstallKernelBundle(t, kernelsDir, name, KernelBundleName)
}

// InstallKernelBundle imports the shared kernel bundle bundleName (e.g.
// Kernel9PBundleName, KernelARM64BundleName) into the kernel store at
// kernelsDir under name, for the arch its file name ends with.
func InstallKernelBundle(t testing.TB, kernelsDir, name, bundleName string) {
	t.Helper()
	src := extract(t, bundle(t, bundleName), t.TempDir())
	a := "x86_64"
	if strings.HasSuffix(bundleName, "-arm64.tar.zst") {
		a = "arm64"
	}
	_, err := kernelstore.New(kernelsDir).Import(context.Background(), name, filepath.Dir(src), kernelstore.ImportOptions{
		Distro: "test", Arch: a, Description: "banger's test kernel",
	})
	if err != nil {
		t.Fatalf("installing the test kernel: %v", err)
	}
}

// RetryBoot calls boot and, when notReady says its error is a guest that
// was not ready in time, calls it once more: under TCG a boot now and then
// hangs. The retry is logged as a REPORT line naming what booted. It
// returns boot's last error.
func RetryBoot(t testing.TB, what string, boot func() error, notReady func(error) bool) error {
	t.Helper()
	err := boot()
	if err != nil && notReady(err) {
		t.Logf("REPORT: %s: the guest was not ready in time, retrying once: %v", what, err)
		err = boot()
	}
	return err
}
