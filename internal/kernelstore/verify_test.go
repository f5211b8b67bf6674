package kernelstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/bundletest"
)

// TestVerify: a freshly pulled kernel verifies; each kind of tampering
// with its files is reported by Verify, naming the file, and a changed
// vmlinux is caught by VerifyVMLinux too.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, want string
		vmlinux    bool // VerifyVMLinux must object too
		tamper     func(t *testing.T, dir string)
	}{
		{name: "same size, other bytes", want: "vmlinux: sha256", vmlinux: true, tamper: func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "vmlinux"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("X"), 100); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "truncated", want: "vmlinux: 10 bytes, the manifest says", vmlinux: true, tamper: func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, "vmlinux"), 10); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "world-writable", want: "initrd.img: mode -rw-rw-rw-", tamper: func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "initrd.img"), 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "file removed", want: "modules/6.12.0/modules.dep: missing", tamper: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "modules/6.12.0/modules.dep")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "file added", want: "modules/6.12.0/evil.ko: not in the manifest", tamper: func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "modules/6.12.0/evil.ko"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symlink retargeted", want: `modules/6.12.0/build: links to "/etc/passwd"`, tamper: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "modules/6.12.0/build")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/passwd", p); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t.TempDir())
			e, _ := serveBundle(t, "k1", bundletest.Full(bundletest.FakeVMLinux("6.12.5", 4096)), bundletest.Faults{})
			res, err := s.Pull(ctx, e, PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(ctx, "k1"); err != nil {
				t.Fatalf("fresh kernel: %v", err)
			}
			if err := VerifyVMLinux(res.Manifest); err != nil {
				t.Fatalf("fresh vmlinux: %v", err)
			}
			tc.tamper(t, res.Manifest.Dir())
			err = s.Verify(ctx, "k1")
			var ve *VerifyError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify after tampering: %v; want an error containing %q", err, tc.want)
			}
			if err := VerifyVMLinux(res.Manifest); (err != nil) != tc.vmlinux {
				t.Errorf("VerifyVMLinux after tampering: %v; want an error: %v", err, tc.vmlinux)
			}
		})
	}
}
