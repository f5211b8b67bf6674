package kernelstore

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/arch"
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

// TestArchOfRealBundles pulls and imports the real x86_64 and arm64 test
// kernels: each installs under its own arch (aarch64 accepted, arm64
// recorded), and each is refused, with one line naming both arches, when
// its catalog entry or --arch says the other; nothing is installed then.
// A pull of the other arch's build over an install needs --force.
func TestArchOfRealBundles(t *testing.T) {
	shared, err := bundletest.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	bundles := map[string]string{"x86_64": "test-6.12-x86_64.tar.zst", "arm64": "test-6.12-arm64.tar.zst"}
	entry := func(a string) kernelcat.Entry {
		p := filepath.Join(shared, "kernels", bundles[a])
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return kernelcat.Entry{Name: "k", Distro: "test", Arch: a, KernelVersion: "6.12.117",
			URL: "file://" + p, SHA256: bundletest.SHA256(data), Size: int64(len(data))}
	}
	ctx := context.Background()
	wrong := map[string]string{
		"x86_64": `pulling kernel "k" for arm64: vmlinux is built for x86_64 (ELF), not arm64 (hint: `,
		"arm64":  `pulling kernel "k" for x86_64: vmlinux is built for arm64 (arm64 Image), not x86_64 (hint: `,
	}
	for a, other := range map[string]string{"x86_64": "arm64", "arm64": "x86_64"} {
		s := New(t.TempDir())
		e := entry(a)
		e.Arch = other // the entry lies about its bundle
		_, err := s.Pull(ctx, e, PullOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), wrong[a]) || strings.Contains(err.Error(), "\n") {
			t.Errorf("pull of the %s bundle as %s: %v", a, other, err)
		}
		if _, err := s.Get("k"); !errors.Is(err, ErrNotInstalled) {
			t.Errorf("after the refused pull: %v", err)
		}
		res, err := s.Pull(ctx, entry(a), PullOptions{})
		if err != nil || res.Manifest.Arch != a {
			t.Fatalf("pull of the %s bundle: %v", a, err)
		}
		_, err = s.Pull(ctx, entry(other), PullOptions{})
		if want := `kernel "k" is installed for ` + a + `; pulling its ` + other + ` build would replace it`; err == nil || err.Error() != want || !errors.As(err, new(*InstalledError)) {
			t.Errorf("pull of the other arch over an install: %v\nwant %s", err, want)
		}
		if res, err := s.Pull(ctx, entry(other), PullOptions{Force: true}); err != nil || res.Manifest.Arch != other {
			t.Errorf("forced pull of the other arch: %v", err)
		}

		// Import: the unpacked vmlinux, with --arch right (an alias) and wrong.
		dir := t.TempDir()
		cmd := exec.CommandContext(ctx, "tar", "--zstd", "-xf", strings.TrimPrefix(entry(a).URL, "file://"), "-C", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		_, err = s.Import(ctx, "imp", dir, ImportOptions{Distro: "test", Arch: other})
		var me *arch.MismatchError
		if want := `importing kernel "imp": vmlinux is built for ` + a; err == nil || !strings.HasPrefix(err.Error(), want) ||
			!errors.As(err, new(*ImportArchError)) || !errors.As(err, &me) {
			t.Errorf("import of the %s kernel as %s: %v", a, other, err)
		}
		alias := map[string]string{"x86_64": "amd64", "arm64": "aarch64"}[a]
		m, err := s.Import(ctx, "imp", dir, ImportOptions{Distro: "test", Arch: alias})
		if err != nil || m.Arch != a {
			t.Errorf("import of the %s kernel as %s: %v, %+v", a, alias, err, m)
		}
	}
}
