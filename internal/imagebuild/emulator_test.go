package imagebuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/imagebuild/imagetest"
)

// TestCheckEmulator reads binfmt_misc listings written into a temporary
// directory: the host's own handlers cannot be removed or disabled by a
// test without breaking other tests that run at the same time, so the
// faults are made here.
func TestCheckEmulator(t *testing.T) {
	const good = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string // "" map: binfmt_misc not mounted
		want    string            // "" for no error
		imgArch string
	}{
		{"same arch", nil, "", arch.X86_64},
		{"no arch", nil, "", ""},
		{"not mounted", nil, "binfmt_misc is not mounted", arch.ARM64},
		{"no handler", map[string]string{"status": "enabled\n"}, "no qemu-aarch64 handler is registered", arch.ARM64},
		{"disabled", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(good, "enabled", "disabled", 1)}, "handler is disabled", arch.ARM64},
		{"no F flag", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(good, "PF", "P", 1)}, "lacks the F flag", arch.ARM64},
		{"usable", map[string]string{"status": "enabled\n", "qemu-aarch64": good}, "", arch.ARM64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				must(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
			}
			err := checkEmulatorIn(dir, tc.imgArch, arch.X86_64)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			var ee *EmulatorError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "update-binfmts --enable qemu-aarch64") {
				t.Fatalf("got %v, want an EmulatorError saying %q and the fix", err, tc.want)
			}
			if ee.Arch != arch.ARM64 || ee.Host != arch.X86_64 {
				t.Errorf("error names arch %q on host %q", ee.Arch, ee.Host)
			}
		})
	}
	if got := platformArch("linux/arm64/v8"); got != arch.ARM64 {
		t.Errorf("platformArch(linux/arm64/v8) = %q", got)
	}
	if got := platformArch("linux/s390x"); got != "" {
		t.Errorf("platformArch(linux/s390x) = %q", got)
	}
}

// TestAptSandboxForeignArch runs the apt step in a tree of Debian's arm64
// busybox on an x86_64 host: the sandboxed shell and apt stand-in are
// arm64 programs, run by the kernel through qemu-user-static's binfmt
// handler (scripts/install-deps.sh registers it).
func TestAptSandboxForeignArch(t *testing.T) {
	needRoot(t)
	if arch.Host() != arch.X86_64 {
		t.Fatalf("this test runs arm64 programs on an x86_64 host; the host is %s", arch.Host())
	}
	if err := checkEmulator("", arch.ARM64); err != nil {
		t.Fatalf("%v (scripts/install-deps.sh sets this up)", err)
	}
	debs := guesttest.UnpackARM64Debs(t)
	tree := busyboxTreeFrom(t, filepath.Join(debs, "bin/busybox"))
	must(t, os.WriteFile(filepath.Join(tree, "usr/bin/uname-seen"), []byte("#!/bin/sh\nbusybox uname -m >/seen/machine\n"), 0o755))
	// The stand-in apt-get also records the machine its shell runs as.
	apt, err := os.ReadFile(filepath.Join(tree, "usr/bin/apt-get"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(tree, "usr/bin/apt-get"), append(apt, []byte("/usr/bin/uname-seen\n")...), 0o755))
	if err := installPackages(context.Background(), tree, []string{"pkg-a"}, arch.ARM64, ""); err != nil {
		t.Fatal(err)
	}
	seen := readSeen(t, filepath.Join(tree, "seen", "install"))
	if seen["args"] != "install -y -qq --no-install-recommends pkg-a" {
		t.Errorf("apt-get %s", seen["args"])
	}
	machine, err := os.ReadFile(filepath.Join(tree, "seen", "machine"))
	must(t, err)
	if got := strings.TrimSpace(string(machine)); got != "aarch64" {
		t.Errorf("the image's programs ran as %q, want aarch64", got)
	}
}

// TestBuildForeignArchWithoutEmulator: a Debian arm64 image that lacks
// the base packages, on a host whose binfmt_misc has no arm64 handler (an
// empty listing stands in for it), stops before apt with an
// EmulatorError naming the fix, and leaves no image and no cache entry.
func TestBuildForeignArchWithoutEmulator(t *testing.T) {
	needRoot(t)
	if arch.Host() != arch.X86_64 {
		t.Fatalf("this test builds an arm64 image on an x86_64 host; the host is %s", arch.Host())
	}
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, err := reg.Push("test/debian-arm:v1", imagetest.Image("linux/arm64", imagetest.Layer(
		imagetest.Dir("etc"), imagetest.File("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"))))
	must(t, err)
	e := newEnv(t, "")
	noHandlers := t.TempDir()
	must(t, os.WriteFile(filepath.Join(noHandlers, "status"), []byte("enabled\n"), 0o644))
	_, err = e.build(context.Background(), ref, "arm", func(o *Options) {
		o.Platform = "linux/arm64"
		o.binfmtDir = noHandlers
	})
	var ee *EmulatorError
	if !errors.As(err, &ee) || ee.Arch != arch.ARM64 || !strings.Contains(err.Error(), "no qemu-aarch64 handler") ||
		!strings.Contains(err.Error(), "update-binfmts --enable qemu-aarch64") {
		t.Fatalf("build: %v, want an EmulatorError for arm64 naming the fix", err)
	}
	if v := e.imageNames(t); len(v) != 0 {
		t.Errorf("the refused build left images %v", v)
	}
	if l := e.leftovers(t); len(l) != 0 {
		t.Errorf("the refused build left %v", l)
	}
}
