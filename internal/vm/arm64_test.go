package vm

import (
	"cmp"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/diskcopy"
	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/logtail"
)

// arm64Shared: the shared arm64 test kernel, installed as "test-arm64"
// beside "test" in the shared kernels directory, and an arm64 busybox
// rootfs with Debian's arm64 dropbear trusting the shared key.
var arm64Shared struct {
	once sync.Once
	sshd string
}

func setupARM64(t *testing.T) {
	t.Helper()
	setup(t)
	arm64Shared.once.Do(func() {
		guesttest.InstallKernelBundle(t, shared.kernels, "test-arm64", guesttest.KernelARM64BundleName)
		pub, err := os.ReadFile(filepath.Join(shared.ssh, "id_ed25519.pub"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(shared.dir, "arm64-sshd.ext4")
		guesttest.BuildRootfs(t, p, guesttest.Rootfs{Arch: "arm64", AuthorizedKey: string(pub), SizeMiB: 48})
		arm64Shared.sshd = p
	})
	if arm64Shared.sshd == "" {
		t.Fatal("the arm64 test files could not be prepared (see the first failing test)")
	}
}

// TestARM64Lifecycle boots the shared arm64 test kernel and an arm64
// busybox + dropbear rootfs with qemu-system-aarch64 -M virt (TCG on an
// x86_64 host), made with --arch aarch64 (the alias): ready over SSH,
// the guest is aarch64 with its console on the PL011 (ttyAMA0), a
// copy-in is an extra disk after the rootfs (which stays /dev/vda on
// virt), and a stop presses the power button, which busybox's acpid
// turns into a power-off that ends QEMU.
func TestARM64Lifecycle(t *testing.T) {
	setupARM64(t)
	s := newStore(t, nil)
	ctx := context.Background()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "hello.txt"), []byte("hello arm64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := s.Create(ctx, CreateOptions{Name: "arm", Kernel: "test-arm64", Rootfs: arm64Shared.sshd, Arch: "aarch64",
		MemoryMiB: 256, CopyIns: []CopyIn{{HostDir: data, GuestDir: "/data"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Config.Arch != "arm64" || v.Config.VMM != VMMQEMU || v.Config.Ready != ReadySSH {
		t.Fatalf("config: arch %q, vmm %q, ready %q; want arm64, qemu, ssh", v.Config.Arch, v.Config.VMM, v.Config.Ready)
	}
	v = startRetry(t, s, "arm")
	if v.State.Status != StatusRunning || v.State.Accel != "tcg" && v.State.Accel != "kvm" {
		t.Fatalf("after start: %+v", v.State)
	}
	argv := strings.Join(v.State.Argv, " ")
	for _, w := range []string{"qemu-system-aarch64 ", "-M virt,gic-version=max,", "console=ttyAMA0"} {
		if !strings.Contains(argv, w) {
			t.Errorf("VMM command line lacks %q: %s", w, argv)
		}
	}
	if b := v.State.Boot; b.Kernel == 0 || b.Init == 0 || b.Ready < b.Init {
		t.Errorf("boot timings: %+v", b)
	}

	target, err := s.SSH("arm")
	if err != nil {
		t.Fatal(err)
	}
	c, err := target.Connect(ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code, err := guest.Run(ctx, c, "uname -m; cat /proc/cmdline; cat /data/hello.txt; grep ' / ' /proc/mounts", nil, &out, io.Discard)
	c.Close()
	if err != nil || code != 0 {
		t.Fatalf("ssh: code %d, err %v, output %q", code, err, out.String())
	}
	for _, w := range []string{"aarch64\n", "console=ttyAMA0", "hello arm64\n", "/dev/root / ext4"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("guest output lacks %q:\n%s", w, out.String())
		}
	}

	// Graceful stop: the power button, acpid, poweroff, PSCI ends QEMU.
	t0 := time.Now()
	if was, err := s.Stop(ctx, "arm", StopOptions{Timeout: 90 * time.Second}); err != nil || !was {
		t.Fatalf("stop: %v, %v", was, err)
	}
	if d := time.Since(t0); d > 80*time.Second {
		t.Errorf("graceful stop took %v: was the guest killed?", d)
	}
	v = status(t, s, "arm")
	if v.State.Status != StatusStopped || v.State.PID != 0 {
		t.Fatalf("after stop: %+v", v.State)
	}
	if log := logtail.ReadFrom(v.ConsoleLog(), v.State.ConsoleOffset, 1<<20); !strings.Contains(log, "reboot: Power down") {
		t.Errorf("the guest did not power off on the power button:\n%s", strings.Join(logtail.Lines(log, 15), "\n"))
	}
}

// TestARM64Snapshot snapshots a running arm64 guest (QEMU virt: its RAM
// a shared memfd copied to the snapshot's memory file, the device state
// through the migration stream) and restores a clone from it: the clone
// is arm64, runs on, has the source's files, and the identity step over
// SSH (arm64 reseed program) made it its own machine.
func TestARM64Snapshot(t *testing.T) {
	setupARM64(t)
	s := newStore(t, nil)
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateOptions{Name: "arms", Kernel: "test-arm64", Rootfs: arm64Shared.sshd, MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}
	startRetry(t, s, "arms")
	run := func(name, cmd string) string {
		t.Helper()
		target, err := s.SSH(name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := target.Connect(ctx, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var out strings.Builder
		if code, err := guest.Run(ctx, c, cmd, nil, &out, io.Discard); err != nil || code != 0 {
			t.Fatalf("%s: %q: code %d, %v: %s", name, cmd, code, err, out.String())
		}
		return out.String()
	}
	run("arms", "echo before-snapshot > /root/mark; sync")
	man, err := s.Snapshot(ctx, "arms", "arm-snap", SnapshotOptions{Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	if man.Arch != "arm64" || man.VMM != VMMQEMU {
		t.Fatalf("snapshot manifest: arch %q, vmm %q", man.Arch, man.VMM)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "armc", Snapshot: "arm-snap", Arch: "x86_64"}); err == nil || !strings.Contains(err.Error(), "arch x86_64 conflicts with snapshot") {
		t.Fatalf("clone with another arch: %v", err)
	}
	v, err := s.Create(ctx, CreateOptions{Name: "armc", Snapshot: "arm-snap"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Config.Arch != "arm64" {
		t.Fatalf("clone arch %q", v.Config.Arch)
	}
	v, err = s.Start(ctx, "armc", StartOptions{Timeout: bootTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if v.State.Path != PathRestore || !strings.Contains(v.State.Identity, "hostname=set") || !strings.Contains(v.State.Identity, "reseed=ioctl") {
		t.Fatalf("clone start: path %q, identity %q", v.State.Path, v.State.Identity)
	}
	out := run("armc", "cat /root/mark; hostname; uname -m")
	if out != "before-snapshot\narmc\naarch64\n" {
		t.Fatalf("clone says %q", out)
	}
	if was, err := s.Stop(ctx, "armc", StopOptions{Timeout: 90 * time.Second}); err != nil || !was {
		t.Fatalf("stop of the clone: %v, %v", was, err)
	}
}

// TestArchMismatch: a kernel, image and VM of different architectures
// are refused at create with one line naming both; --arch takes aliases;
// the default is the image's architecture, else the kernel's.
func TestArchMismatch(t *testing.T) {
	setupARM64(t)
	s := newStore(t, nil)
	ctx := context.Background()
	// An image built for arm64 (its manifest says so), booting test-arm64.
	addImage := func(name, kernel, platform string) {
		t.Helper()
		txn, err := image.New(s.Layout.ImagesDir()).Begin(ctx, name, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer txn.Abort()
		if err := diskcopy.CopyWith(ctx, txn.RootfsPath(), shared.plain, diskcopy.Options{Perm: 0o600}); err != nil {
			t.Fatal(err)
		}
		if _, err := txn.Commit(ctx, &image.Manifest{KernelRef: kernel, Source: image.SourceBuild, Platform: platform, Arch: strings.TrimPrefix(platform, "linux/")}); err != nil {
			t.Fatal(err)
		}
	}
	addImage("armimg", "test-arm64", "linux/arm64")
	addImage("x86img", "test", "linux/amd64")
	for _, tc := range []struct {
		name string
		o    CreateOptions
		err  string // "" for success
		arch string
	}{
		{"kernel decides", CreateOptions{Kernel: "test-arm64", Rootfs: shared.plain}, "", "arm64"},
		{"x86 kernel", CreateOptions{Kernel: "test", Rootfs: shared.plain}, "", "x86_64"},
		{"image decides", CreateOptions{Image: "armimg"}, "", "arm64"},
		{"alias amd64", CreateOptions{Kernel: "test", Rootfs: shared.plain, Arch: "amd64"}, "", "x86_64"},
		{"kernel of another arch", CreateOptions{Kernel: "test", Rootfs: shared.plain, Arch: "arm64"},
			`kernel "test" is x86_64 but the VM is arm64`, ""},
		{"arm64 kernel, x86 VM", CreateOptions{Kernel: "test-arm64", Rootfs: shared.plain, Arch: "x86_64"},
			`kernel "test-arm64" is arm64 but the VM is x86_64`, ""},
		{"image of another arch", CreateOptions{Image: "armimg", Arch: "x86_64", Kernel: "test"},
			`image "armimg" is arm64 but the VM is x86_64`, ""},
		{"image and kernel differ", CreateOptions{Image: "x86img", Kernel: "test-arm64"},
			`image "x86img" is x86_64 but kernel "test-arm64" is arm64`, ""},
		{"unknown arch", CreateOptions{Kernel: "test", Rootfs: shared.plain, Arch: "riscv64"},
			`arch: unknown arch "riscv64" (known: x86_64, arm64; amd64 and aarch64 are accepted too)`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Name = "m"
			o.Net = cmp.Or(o.Net, NetNone)
			v, err := s.Create(ctx, o)
			if tc.err != "" {
				if want := `creating VM "m": ` + tc.err; err == nil || err.Error() != want {
					t.Fatalf("err = %v\nwant %s", err, want)
				}
				if got := vmsDirEntries(t, s); len(got) != 0 {
					t.Fatalf("a refused create left %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Remove(ctx, "m", true) }()
			if v.Config.Arch != tc.arch {
				t.Fatalf("arch = %q, want %q", v.Config.Arch, tc.arch)
			}
		})
	}
	// A VM created with no arch recorded (before banger had arm64) is x86_64.
	if got := (Config{}).GuestArch(); got != "x86_64" {
		t.Errorf("GuestArch of an old config = %q", got)
	}
	if !slices.Contains([]string{"x86_64", "arm64"}, (Config{Arch: "aarch64"}).GuestArch()) {
		t.Error("GuestArch does not canonicalise")
	}
}
