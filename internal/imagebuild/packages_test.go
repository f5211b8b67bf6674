package imagebuild

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The golden Dockerfile installs exactly DebianBasePackages.
func TestGoldenDockerfileHasBasePackages(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "images", "golden", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ARG PACKAGES="([^"]*)"`).FindSubmatch(data)
	if m == nil {
		t.Fatal(`images/golden/Dockerfile has no ARG PACKAGES="..." line`)
	}
	got := slices.Sorted(slices.Values(strings.Fields(string(m[1]))))
	want := slices.Sorted(slices.Values(DebianBasePackages))
	if !slices.Equal(got, want) {
		t.Fatalf("Dockerfile installs %v, DebianBasePackages is %v", got, want)
	}
}

func TestPackageHash(t *testing.T) {
	a := PackageHash("sha256:abc", []string{"b", "a"})
	if a != PackageHash("sha256:abc", []string{"a", "b"}) {
		t.Error("package order changes the hash")
	}
	if len(a) != 64 {
		t.Errorf("hash %q is not hex sha256", a)
	}
	for _, other := range []string{
		PackageHash("sha256:abd", []string{"a", "b"}),
		PackageHash("sha256:abc", []string{"a"}),
		PackageHash("sha256:abc", []string{"a", "b", "c"}),
		PackageHash("sha256:abc", []string{"ab"}),
	} {
		if other == a {
			t.Error("different inputs give the same hash")
		}
	}
}

func TestOSReleaseAndDpkg(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if o := readOSRelease(root); o.DebianLike() || !strings.Contains(o.String(), "unknown") {
		t.Errorf("empty tree: %+v", o)
	}
	write("usr/lib/os-release", "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME=\"Ubuntu 24.04 LTS\"\n")
	if o := readOSRelease(root); !o.DebianLike() || o.String() != "Ubuntu 24.04 LTS" {
		t.Errorf("ubuntu: %+v", o)
	}
	write("etc/os-release", "ID=alpine\nPRETTY_NAME='Alpine Linux v3.20'\n")
	if o := readOSRelease(root); o.DebianLike() || o.String() != "Alpine Linux v3.20" {
		t.Errorf("alpine: %+v", o)
	}
	write("etc/os-release", "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n")
	if o := readOSRelease(root); !o.DebianLike() {
		t.Errorf("mint: %+v", o)
	}
	write("var/lib/dpkg/status", "Package: udev\nStatus: install ok installed\nVersion: 1\n\nPackage: iproute2\nStatus: deinstall ok config-files\n\nPackage: ca-certificates\nStatus: install ok installed\n")
	got := missingPackages(root, DebianBasePackages)
	want := []string{"iproute2", "openssh-server", "systemd-resolved", "systemd-sysv"}
	if !slices.Equal(got, want) {
		t.Errorf("missing %v, want %v", got, want)
	}
	if l := lacking(root); len(l) != len(guestNeeds) {
		t.Errorf("empty tree lacks only %v", l)
	}
	write("usr/sbin/sshd", "")
	if l := lacking(root); slices.Contains(l, "an SSH server (sshd)") || !slices.Contains(l, "an init (/sbin/init)") {
		t.Errorf("with sshd: lacking %v", l)
	}
}

// The golden Dockerfile's default base is pinned by digest: a tag alone
// changes under the build.
func TestGoldenDockerfileBasePinned(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "images", "golden", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ARG BASE=(\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("images/golden/Dockerfile has no ARG BASE=... line")
	}
	if !regexp.MustCompile(`^debian:[\w.-]+@sha256:[0-9a-f]{64}$`).Match(m[1]) {
		t.Errorf("golden base %s is not a Debian image pinned by digest (want debian:TAG@sha256:...)", m[1])
	}
}
