package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/thaloco/banger/internal/ext4/ext4test"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild"
)

// goldenCache is where scripts/build-golden.sh keeps its inputs across
// runs (outside the checkout), unless BANGER_GOLDEN_CACHE says otherwise.
func goldenCache() string {
	if c := os.Getenv("BANGER_GOLDEN_CACHE"); c != "" {
		return c
	}
	return "/var/cache/banger/golden"
}

// TestGoldenImage runs the real golden build end to end (mmdebstrap,
// podman build --isolation chroot, podman save, banger image build), then
// builds an image from the bare Debian base so banger installs the base
// packages itself with apt, and builds it again from the cache.
func TestGoldenImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the golden build needs root for mmdebstrap and podman (CI runs as root)")
	}
	ctx := testContext(t)
	bin := bangerBin(t)
	state := t.TempDir()
	env := cleanEnv("BANGER_STATE_DIR="+state, "BANGER="+bin, "BANGER_GOLDEN_CACHE="+goldenCache())

	// The shared test kernel stands in for generic-6.12 (the real one
	// comes from the kernel pipeline and takes an hour to build).
	kdir := t.TempDir()
	mustRun(t, ctx, env, "tar", "--zstd", "-xf", filepath.Join(sharedDir(t), "kernels", "test-6.12-x86_64.tar.zst"), "-C", kdir)
	mustRun(t, ctx, env, bin, "kernel", "import", "generic-6.12", "--from", kdir, "--distro", "generic", "--arch", "x86_64")

	start := time.Now()
	mustRun(t, ctx, env, filepath.Join(repoRoot(t), "scripts", "build-golden.sh"))
	t.Logf("scripts/build-golden.sh took %s", time.Since(start).Round(time.Second))
	golden := showImage(t, env, bin, "golden")
	if !strings.HasPrefix(golden.OS, "Debian GNU/Linux 12") || golden.KernelRef != "generic-6.12" || golden.Source != image.SourceBuild ||
		len(golden.Installed) != 0 || len(golden.Warnings) != 0 || !strings.HasPrefix(golden.ImageRef, "docker-archive:") {
		t.Errorf("golden manifest: %+v (want Debian 12, generic-6.12, every base package already in the Dockerfile, no warnings)", golden)
	}
	pub, err := os.ReadFile(filepath.Join(state, "ssh", "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	checkGuest(t, golden.RootfsPath(), "golden", string(pub))

	t.Run("base packages with apt", func(t *testing.T) {
		// The bare mmdebstrap base the script cached: no systemd, no sshd.
		base := filepath.Join(goldenCache(), "base-bookworm.tar")
		layer, err := tarball.LayerFromFile(base, tarball.WithCompressionLevel(1))
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
		r := mustRun(t, ctx, env, bin, "image", "build", "--from-image", "oci:"+dir, "--name", "deb")
		if !strings.Contains(r.stderr, "installing with apt") {
			t.Errorf("no apt step in the log:\n%s", r.stderr)
		}
		deb := showImage(t, env, bin, "deb")
		for _, want := range []string{"openssh-server", "systemd-sysv", "iproute2"} {
			if !slices.Contains(deb.Installed, want) {
				t.Errorf("installed %v, want %s among them", deb.Installed, want)
			}
		}
		checkGuest(t, deb.RootfsPath(), "deb", string(pub))

		// Same inputs: the package hash names the cached tree.
		start := time.Now()
		r = mustRun(t, ctx, env, bin, "image", "build", "--from-image", "oci:"+dir, "--name", "deb2")
		took := time.Since(start)
		if !strings.Contains(r.stderr, "using the cached tree") || took > 90*time.Second {
			t.Errorf("second build took %s:\n%s", took, r.stderr)
		}
		t.Logf("cached rebuild took %s", took.Round(100*time.Millisecond))
		if deb2 := showImage(t, env, bin, "deb2"); deb2.PackageHash != deb.PackageHash || !slices.Equal(deb2.Installed, deb.Installed) {
			t.Errorf("cached build differs: %+v vs %+v", deb2, deb)
		}
	})
}

func showImage(t *testing.T, env []string, bin, name string) *image.Manifest {
	t.Helper()
	r := mustRun(t, testContext(t), env, bin, "image", "show", name, "--json")
	var m struct {
		*image.Manifest
		RootfsPath string `json:"rootfs_path"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("image show %s --json: %v\n%s", name, err, r.stdout)
	}
	got, err := image.New(filepath.Dir(filepath.Dir(m.RootfsPath))).Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkGuest checks, with debugfs and e2fsck, what every Debian banger
// guest must hold.
func checkGuest(t *testing.T, img, hostname, pubKey string) {
	t.Helper()
	ext4test.Fsck(t, img)
	if got := string(ext4test.Cat(t, img, "/etc/hostname")); got != hostname+"\n" {
		t.Errorf("%s: hostname %q", hostname, got)
	}
	if got := string(ext4test.Cat(t, img, "/root/.ssh/authorized_keys")); !strings.Contains(got, strings.TrimSpace(pubKey)) {
		t.Errorf("%s: authorized_keys %q lacks banger's key", hostname, got)
	}
	for _, p := range []string{"/usr/sbin/sshd", "/lib/systemd/systemd", "/sbin/init", "/usr/bin/ip",
		"/etc/systemd/system/multi-user.target.wants/ssh.service",
		"/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
		"/etc/systemd/system/multi-user.target.wants/banger-ssh-keygen.service",
		"/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
		"/etc/systemd/network/80-banger-dhcp.network",
		"/etc/ssl/certs/ca-certificates.crt"} {
		if _, ok := ext4test.Stat(t, img, p); !ok {
			t.Errorf("%s: %s missing", hostname, p)
		}
	}
	if in, _ := ext4test.Stat(t, img, "/etc/resolv.conf"); in.LinkTarget != "../run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("%s: resolv.conf %+v", hostname, in)
	}
	if names := ext4test.Ls(t, img, "/etc/ssh"); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "ssh_host_") }) {
		t.Errorf("%s: SSH host keys baked into the image: %v", hostname, names)
	}
	status := string(ext4test.Cat(t, img, "/var/lib/dpkg/status"))
	for _, p := range imagebuild.DebianBasePackages {
		if !strings.Contains(status, "Package: "+p+"\n") {
			t.Errorf("%s: package %s not installed", hostname, p)
		}
	}
}
