// Package powercut gives tests a real ext4 file system, on a loop device
// over a file, whose power they can cut: Cut shuts it down so that nothing
// more reaches its disk, journal included (EXT4_IOC_SHUTDOWN with
// EXT4_GOING_FLAGS_NOLOGFLUSH, which xfstests' godown uses to simulate a
// power failure), and Remount mounts it again, replaying the journal as
// after a reboot, so only what was on stable storage survives. Dropping
// the page cache is no such test: it writes dirty data back first. It is
// only imported by _test.go files, and needs root, mkfs.ext4 and mount.
package powercut

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FS is a mounted file system of the test's own.
type FS struct {
	Dir string // where it is mounted
	img string // the file behind its loop device
}

// New makes a file system of size bytes, mounts it in a temporary
// directory and unmounts it when the test ends. It fails the test unless
// it runs as root with mkfs.ext4 and mount at hand.
func New(t testing.TB, size int64) *FS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a loop device and must run as root (CI does)")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (hint: scripts/install-deps.sh installs it): %v", tool, err)
		}
	}
	f := &FS{Dir: t.TempDir(), img: filepath.Join(t.TempDir(), "fs.ext4")}
	if err := os.WriteFile(f.img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f.img, size); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", f.img)
	run(t, "mount", "-o", "loop", f.img, f.Dir)
	t.Cleanup(func() { _ = exec.CommandContext(context.Background(), "umount", f.Dir).Run() })
	return f
}

// Cut cuts the power: from now on nothing reaches the disk, and every
// operation on the file system fails. It may be called from any goroutine.
func (f *FS) Cut(t testing.TB) {
	d, err := os.Open(f.Dir)
	if err != nil {
		t.Errorf("cutting the power of %s: %v", f.Dir, err)
		return
	}
	defer d.Close()
	const (
		ext4IocShutdown = 0x8004587d // _IOR('X', 125, __u32)
		noLogFlush      = 2          // EXT4_GOING_FLAGS_NOLOGFLUSH
	)
	if err := unix.IoctlSetPointerInt(int(d.Fd()), ext4IocShutdown, noLogFlush); err != nil {
		t.Errorf("cutting the power of %s: %v", f.Dir, err)
	}
}

// Remount unmounts the file system and mounts it again, which replays
// its journal as the first mount after a power cut does.
func (f *FS) Remount(t testing.TB) {
	t.Helper()
	run(t, "umount", f.Dir)
	run(t, "mount", "-o", "loop", f.img, f.Dir)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
