package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// debianLinuxSource is where Debian's linux-source-6.12 package puts the
// source tarball; the build uses it unless LINUX_SRC says otherwise.
const debianLinuxSource = "/usr/src/linux-source-6.12.tar.xz"

var (
	kernelOnce sync.Once
	kernelDir  string
	kernelErr  error
)

// genericKernel runs scripts/make-generic-kernel.sh once per test binary
// (a cache hit when the inputs were built before, a full build otherwise)
// and returns the output directory holding vmlinux, config and provenance.
func genericKernel(t *testing.T) string {
	t.Helper()
	kernelOnce.Do(func() { kernelDir, kernelErr = buildGenericKernel(testContext(t), t) })
	if kernelErr != nil {
		t.Fatal(kernelErr)
	}
	return kernelDir
}

// linuxSource is LINUX_SRC, else Debian's linux-source tarball.
func linuxSource() (string, error) {
	src := os.Getenv("LINUX_SRC")
	if src == "" {
		src = debianLinuxSource
	}
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("kernel source %s: %w (hint: apt-get install linux-source-6.12, or set LINUX_SRC)", src, err)
	}
	return src, nil
}

func buildGenericKernel(ctx context.Context, t *testing.T) (string, error) {
	src, err := linuxSource()
	if err != nil {
		return "", err
	}
	out := filepath.Join(pkgTmp, "generic-kernel")
	env := cleanEnv("LINUX_SRC="+src, "OUT_DIR="+out,
		"FC_CONFIG="+filepath.Join(sharedDir(t), "reference", "firecracker", "microvm-kernel-ci-x86_64-6.1.config"))
	r := runCmd(ctx, env, filepath.Join(repoRoot(t), "scripts", "make-generic-kernel.sh"))
	t.Logf("make-generic-kernel.sh:\n%s%s", r.stdout, r.stderr)
	if r.err != nil {
		return "", fmt.Errorf("make-generic-kernel.sh: %w\n%s", r.err, r.stderr)
	}
	return out, nil
}

// readKV parses a key=value file (the build's provenance, a kernel .config).
func readKV(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			kv[k] = v
		} else if name, ok := strings.CutPrefix(line, "# "); ok && strings.HasSuffix(name, " is not set") {
			kv[strings.TrimSuffix(name, " is not set")] = "n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestGenericKernelOutput(t *testing.T) {
	dir := genericKernel(t)
	cfg := readKV(t, filepath.Join(dir, "config"))
	for _, o := range []string{"VIRTIO_MMIO", "VIRTIO_MMIO_CMDLINE_DEVICES", "VIRTIO_BLK", "VIRTIO_NET",
		"VIRTIO_VSOCKETS", "VSOCKETS", "EXT4_FS", "SERIAL_8250", "SERIAL_8250_CONSOLE", "PVH", "KVM_GUEST",
		"NET_9P", "NET_9P_VIRTIO", "9P_FS", "9P_FS_POSIX_ACL"} {
		if got := cfg["CONFIG_"+o]; got != "y" {
			t.Errorf("CONFIG_%s = %q, want y (built in)", o, got)
		}
	}
	if got, ok := cfg["CONFIG_MODULES"]; ok && got != "n" {
		t.Errorf("CONFIG_MODULES = %q, want it off", got)
	}
	prov := readKV(t, filepath.Join(dir, "provenance"))
	for _, k := range []string{"kernel_version", "source_sha256", "config_sha256", "compiler", "vmlinux_sha256"} {
		if prov[k] == "" {
			t.Errorf("provenance has no %s", k)
		}
	}
	if !strings.HasPrefix(prov["kernel_version"], "6.12.") || prov["name"] != "generic-6.12" {
		t.Errorf("provenance names %s %s, want generic-6.12 and a 6.12.x version", prov["name"], prov["kernel_version"])
	}
	if got := sha256File(t, filepath.Join(dir, "vmlinux")); got != prov["vmlinux_sha256"] {
		t.Errorf("vmlinux sha256 %s, provenance says %s", got, prov["vmlinux_sha256"])
	}
}
