package vm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
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
	usable, why := kvmUsable()
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
		s := &Store{Getenv: func(k string) string { return map[string]string{AccelEnv: tc.env}[k] }}
		got, err := s.qemuAccel()
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
	s := &Store{Logf: func(f string, a ...any) { warned = append(warned, f) }}
	got, err := s.qemuAccel()
	if ok, _ := kvmUsable(); err != nil || (got == "kvm") != ok || (len(warned) == 1) == ok {
		t.Fatalf("detected %q (err %v, warnings %q) but kvmUsable = %v", got, err, warned, ok)
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
	kvm, _ := kvmUsable()
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
		s := &Store{Getenv: func(k string) string { return map[string]string{VMMEnv: tc.env}[k] }}
		if got, err := s.chooseVMM(tc.flag); err != nil || got != tc.want {
			t.Errorf("chooseVMM(%q) with %s=%q = %q, %v; want %q", tc.flag, VMMEnv, tc.env, got, err, tc.want)
		}
	}
	t.Setenv("PATH", "/nonexistent")
	if got, _ := (&Store{}).chooseVMM(""); got != VMMQEMU {
		t.Errorf("without firecracker on PATH auto chose %q", got)
	}
}
