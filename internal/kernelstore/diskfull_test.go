package kernelstore

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/bundletest"
)

// TestPullOnFullDisk pulls into a real, tiny tmpfs: the error says the
// disk is full and where, and nothing is left behind.
func TestPullOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs and must run as root (CI does)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mounting tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	e, _ := serveBundle(t, "k1", bundletest.Full(bundletest.FakeVMLinux("6.12.5", 1<<20)), bundletest.Faults{})
	s := New(dir)
	_, err := s.Pull(context.Background(), e, PullOptions{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	var full *NoSpaceError
	if !strings.Contains(err.Error(), "no space left") || !errors.As(err, &full) || full.Dir != dir || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error does not name the full file system in one line: %v", err)
	}
	if h := hidden(t, dir); len(h) != 0 {
		t.Fatalf("leftovers on the full disk: %v", h)
	}
	if _, err := os.Stat(s.path("k1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("kernel visible after failed pull: %v", err)
	}
}
