package guesttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// KernelARM64BundleName is the shared arm64 test kernel: its vmlinux is
// the arm64 boot Image.
const KernelARM64BundleName = "test-6.12-arm64.tar.zst"

// ARM64DebsEnv names the directory of Debian arm64 packages the arm64
// test root filesystems are made of; unset, it is DefaultARM64Debs.
const ARM64DebsEnv = "BANGER_GUEST_DEBS"

// DefaultARM64Debs is where scripts/install-deps.sh downloads them
// (apt-get download busybox-static:arm64 dropbear-bin:arm64 and what
// dropbear needs).
const DefaultARM64Debs = "/var/cache/banger/guest-arm64"

// ARM64Packages are the packages an arm64 test root filesystem needs:
// busybox-static, dropbear-bin, and the libraries dropbear links.
var ARM64Packages = []string{"busybox-static", "dropbear-bin", "libc6", "libcrypt1", "libtomcrypt1", "libtommath1", "libgmp10", "zlib1g"}

// ARM64Debs returns the directory holding the arm64 .deb files.
func ARM64Debs(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(ARM64DebsEnv)
	if dir == "" {
		dir = DefaultARM64Debs
	}
	for _, p := range ARM64Packages {
		if m, _ := filepath.Glob(filepath.Join(dir, p+"_*_arm64.deb")); len(m) == 0 {
			t.Fatalf("no %s arm64 package in %s (hint: run scripts/install-deps.sh, which downloads them, or set %s)", p, dir, ARM64DebsEnv)
		}
	}
	return dir
}

// UnpackARM64Debs unpacks the arm64 packages into a temporary directory
// with dpkg-deb and returns it.
func UnpackARM64Debs(t testing.TB) string {
	t.Helper()
	dir := ARM64Debs(t)
	out := t.TempDir()
	for _, p := range ARM64Packages {
		debs, _ := filepath.Glob(filepath.Join(dir, p+"_*_arm64.deb"))
		for _, deb := range debs {
			if b, err := exec.CommandContext(t.Context(), "dpkg-deb", "-x", deb, out).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb -x %s: %v: %s", deb, err, b)
			}
		}
	}
	return out
}

// addARM64Dropbear copies dropbear, the dynamic loader and the shared
// libraries (the top level of the multiarch library directories, which
// is all dropbear links) from the unpacked packages into root.
func addARM64Dropbear(t testing.TB, debs, root string) {
	t.Helper()
	copyFile(t, filepath.Join(debs, "usr/sbin/dropbear"), filepath.Join(root, "usr/sbin/dropbear"), 0o755)
	lib := filepath.Join(root, "lib/aarch64-linux-gnu")
	mkdir(t, lib)
	for _, dir := range []string{"lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu"} {
		ents, err := os.ReadDir(filepath.Join(debs, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.IsDir() || !strings.Contains(e.Name(), ".so") {
				continue
			}
			src := filepath.Join(debs, dir, e.Name())
			if e.Type()&os.ModeSymlink != 0 {
				target, err := os.Readlink(src)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, filepath.Join(lib, e.Name())); err != nil {
					t.Fatal(err)
				}
				continue
			}
			copyFile(t, src, filepath.Join(lib, e.Name()), 0o755)
		}
	}
	// The ELF interpreter dropbear names.
	if err := os.Symlink("aarch64-linux-gnu/ld-linux-aarch64.so.1", filepath.Join(root, "lib/ld-linux-aarch64.so.1")); err != nil {
		t.Fatal(err)
	}
}

// KernelARM64Bundle is the path of the shared arm64 test kernel bundle.
func KernelARM64Bundle(t testing.TB) string {
	t.Helper()
	return bundle(t, KernelARM64BundleName)
}

// ExtractKernelBundle unpacks the shared bundle bundleName into dir and
// returns the path of its vmlinux.
func ExtractKernelBundle(t testing.TB, bundleName, dir string) string {
	t.Helper()
	return extract(t, bundle(t, bundleName), dir)
}
