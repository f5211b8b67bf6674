package firecracker

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/vmm"
)

func vmmTap(tap, mac string) vmm.Network { return vmm.Network{Mode: "tap", Tap: tap, MAC: mac} }

func TestBootArgs(t *testing.T) {
	for _, tc := range []struct{ name, arch, user, want string }{
		{"default", "", "", defaultArgs},
		{"added", "x86_64", "  quiet ", defaultArgs + " quiet"},
		{"overridden", "", "console=ttyS1 panic=-1 init=/bin/sh", "reboot=k pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd console=ttyS1 panic=-1 init=/bin/sh"},
		{"init args", "", `tsc_early_khz=2000 -- "a b"`, defaultArgs + ` tsc_early_khz=2000 -- "a b"`},
		// arm64: the 8250 UART of Firecracker's device tree, PSCI for
		// reboots; nothing of the i8042 or reboot=k.
		{"arm64", "arm64", "", "console=ttyS0 panic=1 pci=off"},
		{"arm64 overridden", "arm64", "quiet panic=5", "console=ttyS0 pci=off quiet panic=5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bootArgs(vmm.Machine{Arch: tc.arch, Cmdline: tc.user}); got != tc.want {
				t.Errorf("bootArgs(%s, %q)\n got %q\nwant %q", tc.arch, tc.user, got, tc.want)
			}
		})
	}
}

func TestIsLegacy(t *testing.T) {
	for v, want := range map[string]bool{"0.24.6": true, "v0.25.0": true, "1.0.0": false, "1.17.0-dev": false, "": false} {
		if got := isLegacy(v); got != want {
			t.Errorf("isLegacy(%q) = %v", v, got)
		}
	}
}

// Bad machines are refused with one clear line, before anything runs.
func TestStartRejectsBadMachines(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	for _, tc := range []struct {
		name string
		edit func(*vmm.Machine)
		want string
	}{
		{"user net", func(m *vmm.Machine) { m.Net.Mode = "user" }, "no user-mode networking"},
		{"tap without device", func(m *vmm.Machine) { m.Net = vmmTap("", "") }, "without a tap device"},
		{"unknown net", func(m *vmm.Machine) { m.Net.Mode = "bridge" }, `unknown network mode "bridge"`},
		{"tcg", func(m *vmm.Machine) { m.Accel = "tcg" }, "firecracker needs KVM"},
		{"no cpus", func(m *vmm.Machine) { m.CPUs = 0 }, "1 to 32 vCPUs, not 0"},
		{"too many cpus", func(m *vmm.Machine) { m.CPUs = 33 }, "1 to 32 vCPUs, not 33"},
		{"no memory", func(m *vmm.Machine) { m.MemoryMiB = 0 }, "memory size 0 MiB"},
		{"missing kernel", func(m *vmm.Machine) { m.Kernel += ".gone" }, "kernel: stat"},
		{"missing initrd", func(m *vmm.Machine) { m.Initrd = "/nonexistent/initrd" }, "initrd: stat /nonexistent/initrd"},
		{"rootfs is a dir", func(m *vmm.Machine) { m.Rootfs = e.dir }, "is not a regular file"},
		{"qcow2 disk", func(m *vmm.Machine) { m.RootfsFormat = "qcow2" }, "raw disks only, not qcow2"},
		{"no dir", func(m *vmm.Machine) { m.Dir = "" }, "no state directory"},
		{"long socket path", func(m *vmm.Machine) { m.Dir = filepath.Join(e.dir, strings.Repeat("d", 100)) }, "longer than the 107 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := e.m
			tc.edit(&m)
			_, err := (&Driver{}).Start(t.Context(), m)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `VM "vm1"`) {
				t.Fatalf("error %v, want one naming the VM and %q", err, tc.want)
			}
		})
	}
	if pids := e.pids(t); len(pids) != 0 {
		t.Errorf("bad machines spawned firecrackers %v", pids)
	}
}

func TestCheck(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	if err := (&Driver{Jailer: &Jailer{}}).Check(); err != nil {
		t.Errorf("Check with firecracker and jailer on PATH: %v", err)
	}
	for _, tc := range []struct {
		name string
		d    *Driver
		want string
	}{
		{"not on PATH", &Driver{Binary: "firecracker-v1.9"}, "firecracker-v1.9 not found on PATH: Firecracker ships release binaries, not a Debian package"},
		{"explicit path", &Driver{Binary: filepath.Join(e.dir, "nope", "firecracker")}, "firecracker binary: exec: " + `"` + filepath.Join(e.dir, "nope", "firecracker")},
		{"jailer", &Driver{Jailer: &Jailer{Binary: "jailer-x"}}, "jailer-x not found on PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.Check()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check error %v, want %q", err, tc.want)
			}
		})
	}
	t.Setenv("PATH", t.TempDir())
	if err := (&Driver{}).Check(); err == nil || !strings.Contains(err.Error(), "releases") {
		t.Errorf("Check without firecracker: %v", err)
	}
}
