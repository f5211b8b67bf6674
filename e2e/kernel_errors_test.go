package e2e

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeGenericKernelErrors checks that make-generic-kernel.sh stops with
// one clear line, and leaves no output directory, for a missing toolchain,
// a corrupt tarball, a tarball that is not Linux, and a config that cannot
// provide the essential drivers (the last one runs the real olddefconfig
// on the real source, so it takes a minute or two).
func TestMakeGenericKernelErrors(t *testing.T) {
	shared := sharedDir(t)
	fcConfig := filepath.Join(shared, "reference", "firecracker", "microvm-kernel-ci-x86_64-6.1.config")
	dir := t.TempDir()

	garbage := filepath.Join(dir, "linux-garbage.tar.xz")
	b := make([]byte, 4096)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbage, b, 0o644); err != nil {
		t.Fatal(err)
	}
	notLinux := filepath.Join(dir, "not-linux.tar.xz")
	if err := os.MkdirAll(filepath.Join(dir, "nl", "top"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nl", "top", "README"), []byte("not a kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, testContext(t), cleanEnv(), "tar", "-cJf", notLinux, "-C", filepath.Join(dir, "nl"), "top")

	// Firecracker's config with networking switched off: virtio-net and
	// vsock cannot be built in whatever the script forces.
	noNet := filepath.Join(dir, "no-net.config")
	cfg := strings.Replace(string(readFile(t, fcConfig)), "CONFIG_NET=y\n", "# CONFIG_NET is not set\n", 1)
	if err := os.WriteFile(noNet, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	src := os.Getenv("LINUX_SRC")
	if src == "" {
		src = debianLinuxSource
	}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"missing toolchain", []string{"LINUX_SRC=" + src, "FC_CONFIG=" + fcConfig, "PATH=" + pathWithout(t, "flex", "bison")},
			"missing kernel build tools: flex bison (hint: apt-get install build-essential flex bison bc libelf-dev libssl-dev"},
		{"corrupt tarball", []string{"LINUX_SRC=" + garbage, "FC_CONFIG=" + fcConfig}, "unpacking " + garbage + " failed"},
		{"not linux", []string{"LINUX_SRC=" + notLinux, "FC_CONFIG=" + fcConfig}, "does not contain a Linux source tree"},
		{"wrong sha256", []string{"LINUX_SRC=" + notLinux, "FC_CONFIG=" + fcConfig, "LINUX_SHA256=" + strings.Repeat("0", 64)}, "expected " + strings.Repeat("0", 64)},
		{"not a config", []string{"LINUX_SRC=" + src, "FC_CONFIG=" + notLinux}, "has no CONFIG_ lines"},
		{"unsatisfiable config", []string{"LINUX_SRC=" + src, "FC_CONFIG=" + noNet},
			"the config cannot satisfy the essentials: CONFIG_VIRTIO_NET is absent (want =y)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "generic-kernel")
			env := append(cleanEnv("BANGER_BUILD_CACHE="+t.TempDir(), "OUT_DIR="+out), tc.env...)
			r := runCmd(testContext(t), env, filepath.Join(repoRoot(t), "scripts", "make-generic-kernel.sh"))
			if r.err == nil {
				t.Fatalf("make-generic-kernel.sh succeeded, want failure %q", tc.want)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, r.stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a failed build left %s behind (stat: %v)", out, err)
			}
		})
	}
}
