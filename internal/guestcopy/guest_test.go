package guestcopy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/vm"
)

// guestInit prepares the test guest's awkward places: a 4 MiB tmpfs to
// fill (/small), a read-only tmpfs (/ro).
const guestInit = `mkdir -p /small /ro
mount -t tmpfs -o size=4m tmpfs /small
mount -t tmpfs -o size=1m tmpfs /ro && mount -o remount,ro /ro
`

// testVM is one booted guest (QEMU; TCG where KVM is not usable) with
// dropbear and OpenSSH's sftp-server, and an SSH connection to it.
type testVM struct {
	ssh   *ssh.Client
	state string
}

// bootVM boots the test guest. Its root filesystem has /locked, a
// directory with the ext4 immutable flag (set with debugfs), where even
// root may not create files.
func bootVM(t *testing.T) *testVM {
	t.Helper()
	dir := t.TempDir()
	kernels := filepath.Join(dir, "kernels")
	guesttest.InstallKernel(t, kernels, "test")
	state := filepath.Join(dir, "state")
	kp, err := sshkey.Ensure(filepath.Join(state, "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: kp.Public, SFTP: true, Perl: true, Init: guestInit, SizeMiB: 128})
	hostSh(t, "debugfs -w -R 'mkdir /locked' "+rootfs+" && debugfs -w -R 'set_inode_field /locked flags 0x80010' "+rootfs)
	if out := hostSh(t, "debugfs -R 'stat /locked' "+rootfs); !strings.Contains(out, "Flags: 0x80010") {
		t.Fatalf("/locked is not immutable:\n%s", out)
	}
	s := vm.NewWithOptions(paths.Layout{State: state, KernelsDir: kernels}, vm.Options{
		Logf: func(format string, args ...any) { t.Logf("banger: "+format, args...) },
	})
	ctx := context.Background()
	if _, err := s.Create(ctx, vm.CreateOptions{Name: "cp", Kernel: "test", Rootfs: rootfs, MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove(context.Background(), "cp", true) })
	_, err = s.Start(ctx, "cp", vm.StartOptions{Timeout: 90 * time.Second})
	var be *vm.BootError
	if errors.As(err, &be) && !be.Crashed {
		t.Logf("REPORT: the guest was not ready in time, retrying once: %v", err)
		_, err = s.Start(ctx, "cp", vm.StartOptions{Timeout: 90 * time.Second})
	}
	if err != nil {
		t.Fatal(err)
	}
	target, err := s.SSH("cp")
	if err != nil {
		t.Fatal(err)
	}
	c, err := target.Connect(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &testVM{ssh: c, state: state}
}

// sh runs a shell command in the guest and returns its output; it fails
// the test unless the command exits 0.
func (v *testVM) sh(t *testing.T, cmd string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code, err := guest.Run(context.Background(), v.ssh, cmd, nil, &out, &errb)
	if err != nil || code != 0 {
		t.Fatalf("guest %q: exit %d, %v: %s%s", cmd, code, err, out.String(), errb.String())
	}
	return out.String()
}

// hostSh runs a shell command on the host.
func hostSh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, p string, data []byte, mode os.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
