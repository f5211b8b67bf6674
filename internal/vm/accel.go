package vm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/thaloco/banger/internal/arch"
)

// AccelEnv forces QEMU's accelerator: "kvm" or "tcg".
const AccelEnv = "BANGER_QEMU_ACCEL"

// KVMUsable reports whether KVM can run ordinary guests here: /dev/kvm
// opens read-write AND the CPU advertises hardware virtualization (vmx or
// svm in /proc/cpuinfo). A /dev/kvm without them (kvm_pvm, some nested
// setups) fails ordinary guests with "KVM internal error". why says what
// is missing.
func KVMUsable() (ok bool, why string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Sprintf("cannot open /dev/kvm: %v", err)
	}
	f.Close()
	// The vmx/svm flags are x86's; an arm64 host has no such flag.
	if runtime.GOARCH == "amd64" && !cpuHasVirt() {
		return false, "/dev/kvm exists but the CPU advertises no vmx/svm in /proc/cpuinfo"
	}
	return true, ""
}

func cpuHasVirt() bool {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(k) != "flags" {
			continue
		}
		for _, fl := range strings.Fields(v) {
			if fl == "vmx" || fl == "svm" {
				return true
			}
		}
		return false
	}
	return false
}

// qemuAccel picks QEMU's accelerator for a guest of architecture
// guestArch: $BANGER_QEMU_ACCEL when set, else KVM when usable, else TCG
// with a one-line warning. A guest of another architecture than the host
// always runs under TCG.
func (s *Store) qemuAccel(guestArch string) (string, error) {
	if host := arch.Host(); guestArch != host {
		if s.getenv(AccelEnv) == "kvm" {
			return "", fmt.Errorf("%s=kvm but KVM cannot run %s guests on this %s host (hint: unset %s: QEMU then emulates the guest with TCG)", AccelEnv, guestArch, host, AccelEnv)
		}
		s.warnCross.Do(func() {
			s.logf("note: %s guests on this %s host run under QEMU's TCG software emulation, much slower than KVM", guestArch, host)
		})
		return "tcg", nil
	}
	switch forced := s.getenv(AccelEnv); forced {
	case "kvm":
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return "", fmt.Errorf("%s=kvm but KVM is not usable: %v (hint: load the kvm module and make /dev/kvm accessible, e.g. add yourself to the kvm group, or set %s=tcg)", AccelEnv, err, AccelEnv) //nolint:errorlint // the hint follows the cause
		}
		f.Close()
		return "kvm", nil
	case "tcg":
		return "tcg", nil
	case "":
	default:
		return "", fmt.Errorf("%s=%q: want kvm or tcg", AccelEnv, forced)
	}
	if ok, why := KVMUsable(); !ok {
		s.warnTCG.Do(func() {
			s.logf("warning: KVM is not usable (%s): QEMU uses TCG software emulation, which is much slower (set %s=tcg to silence this)", why, AccelEnv)
		})
		return "tcg", nil
	}
	return "kvm", nil
}

// VMM names.
const (
	VMMQEMU        = "qemu"
	VMMFirecracker = "firecracker"
)

// VMMEnv chooses the VMM of new VMs when --vmm is not given.
const VMMEnv = "BANGER_VMM"

// chooseVMM resolves a --vmm value (or $BANGER_VMM) for a guest of
// architecture guestArch: "auto" or "" means Firecracker when it is on
// PATH, KVM is usable and the guest is of the host's architecture, else
// QEMU. Firecracker runs only guests of the host's architecture.
func (s *Store) chooseVMM(flag, guestArch string) (string, error) {
	v := flag
	if v == "" {
		v = s.getenv(VMMEnv)
	}
	host := arch.Host()
	switch v {
	case VMMFirecracker:
		if guestArch != host {
			return "", &ForeignArchError{VMM: VMMFirecracker, Arch: guestArch, HostArch: host}
		}
		return v, nil
	case VMMQEMU:
		return v, nil
	case "", "auto":
		if guestArch != host {
			return VMMQEMU, nil
		}
		if _, err := exec.LookPath("firecracker"); err == nil {
			if ok, _ := KVMUsable(); ok {
				return VMMFirecracker, nil
			}
		}
		return VMMQEMU, nil
	}
	return "", fmt.Errorf("unknown VMM %q (hint: use qemu, firecracker or auto)", v)
}
