package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/arch"
)

// TestForcedKVM starts a guest with BANGER_QEMU_ACCEL=kvm. What must
// happen depends on the host, and each case is checked: with usable KVM
// the guest boots; without /dev/kvm the start fails up front naming the
// fix; with a /dev/kvm that cannot run ordinary guests (kvm_pvm, as on
// banger's CI machines) QEMU fails and banger reports it with the fix.
func TestForcedKVM(t *testing.T) {
	s := newStore(t, map[string]string{AccelEnv: "kvm"})
	if _, err := s.Create(context.Background(), CreateOptions{Name: "kvm", Kernel: "test", Rootfs: shared.plain,
		Net: NetNone, MemoryMiB: 256, ReadyMarker: "banger-test: ready"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Start(context.Background(), "kvm", StartOptions{Timeout: bootTimeout})
	usable, why := KVMUsable()
	_, openErr := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	switch {
	case usable:
		if err != nil {
			t.Fatalf("KVM is usable here but the boot failed: %v", err)
		}
	case openErr != nil:
		if err == nil || !strings.Contains(err.Error(), "BANGER_QEMU_ACCEL=kvm but KVM is not usable") || !strings.Contains(err.Error(), "hint:") {
			t.Fatalf("no /dev/kvm (%v): err = %v; want the up-front error with a hint", openErr, err)
		}
	default:
		t.Logf("KVM here: %s", why)
		var be *BootError
		if !errors.As(err, &be) || !be.Crashed || !strings.Contains(err.Error(), "KVM failed") || !strings.Contains(err.Error(), "BANGER_QEMU_ACCEL=tcg") {
			t.Fatalf("err = %v; want a KVM failure with the BANGER_QEMU_ACCEL=tcg hint", err)
		}
		if v := status(t, s, "kvm"); v.State.Status != StatusCrashed || !strings.Contains(v.State.Reason, "KVM failed") {
			t.Fatalf("state after the KVM failure: %+v", v.State)
		}
	}
}

func TestAccelSelection(t *testing.T) {
	for _, tc := range []struct {
		env, want, err string
	}{
		{env: "tcg", want: "tcg"},
		{env: "hvf", err: `BANGER_QEMU_ACCEL="hvf": want kvm or tcg`},
	} {
		s := &Store{opts: Options{Getenv: func(k string) string { return map[string]string{AccelEnv: tc.env}[k] }}}
		got, err := s.qemuAccel(arch.Host())
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.env, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	// Detection: the warning is given exactly when TCG is chosen.
	var warned []string
	s := &Store{opts: Options{Logf: func(f string, a ...any) { warned = append(warned, f) }}}
	got, err := s.qemuAccel(arch.Host())
	if ok, _ := KVMUsable(); err != nil || (got == "kvm") != ok || (len(warned) == 1) == ok {
		t.Fatalf("detected %q (err %v, warnings %q) but KVMUsable = %v", got, err, warned, ok)
	}
}

// TestChooseVMM checks driver selection. Firecracker cannot be installed
// here, so a stand-in script named firecracker on PATH plays its part:
// only its presence matters to the choice.
func TestChooseVMM(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(bin+"/firecracker", []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	kvm, _ := KVMUsable()
	auto := VMMQEMU
	if kvm {
		auto = VMMFirecracker
	}
	for _, tc := range []struct {
		flag, env, want string
	}{
		{"", "", auto},
		{"auto", "", auto},
		{"", "qemu", VMMQEMU},
		{"", "firecracker", VMMFirecracker},
		{"qemu", "firecracker", VMMQEMU},
	} {
		s := &Store{opts: Options{Getenv: func(k string) string { return map[string]string{VMMEnv: tc.env}[k] }}}
		if got, err := s.chooseVMM(tc.flag, arch.Host()); err != nil || got != tc.want {
			t.Errorf("chooseVMM(%q) with %s=%q = %q, %v; want %q", tc.flag, VMMEnv, tc.env, got, err, tc.want)
		}
	}
	// A guest of another architecture: auto is QEMU even with Firecracker
	// and KVM, and Firecracker is refused.
	other := otherArch()
	if got, err := (&Store{}).chooseVMM("auto", other); err != nil || got != VMMQEMU {
		t.Errorf("auto for a %s guest = %q, %v; want qemu", other, got, err)
	}
	if _, err := (&Store{}).chooseVMM(VMMFirecracker, other); !errors.As(err, new(*ForeignArchError)) {
		t.Errorf("firecracker for a %s guest: %v", other, err)
	}
	t.Setenv("PATH", "/nonexistent")
	if got, _ := (&Store{}).chooseVMM("", arch.Host()); got != VMMQEMU {
		t.Errorf("without firecracker on PATH auto chose %q", got)
	}
}

// otherArch is an architecture that is not the host's.
func otherArch() string {
	if arch.Host() == arch.ARM64 {
		return arch.X86_64
	}
	return arch.ARM64
}

// TestCrossArchAccel: a guest of another architecture runs under TCG,
// with a note once; forcing KVM for it is an error naming both.
func TestCrossArchAccel(t *testing.T) {
	var notes []string
	s := &Store{opts: Options{Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}}
	other := otherArch()
	for range 2 {
		if got, err := s.qemuAccel(other); err != nil || got != "tcg" {
			t.Fatalf("accel for a %s guest = %q, %v; want tcg", other, got, err)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], other+" guests on this "+arch.Host()+" host run under QEMU's TCG") {
		t.Errorf("notes %q; want one about TCG", notes)
	}
	s = &Store{opts: Options{Getenv: func(k string) string { return map[string]string{AccelEnv: "kvm"}[k] }}}
	if _, err := s.qemuAccel(other); err == nil || !strings.Contains(err.Error(), "KVM cannot run "+other+" guests on this "+arch.Host()+" host") {
		t.Errorf("forced KVM for a %s guest: %v", other, err)
	}
}
