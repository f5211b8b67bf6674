package vm

import (
	"regexp"
	"slices"
	"strings"

	"github.com/thaloco/banger/internal/logtail"
)

// quoteConsole formats the last lines of a boot's console output to end
// an error message.
func quoteConsole(log string, n int) string {
	lines := logtail.Lines(log, n)
	if len(lines) == 0 {
		return " (the console log is empty)"
	}
	return "; last console lines:\n  " + strings.Join(lines, "\n  ")
}

var (
	timestampRE = regexp.MustCompile(`^\[\s*\d+\.\d+\]\s*`)
	panicRE     = regexp.MustCompile(`Kernel panic - not syncing: .*`)
	initRE      = regexp.MustCompile(`Run \S+ as init process`)
	// Lines with which QEMU reports that KVM cannot run the guest.
	kvmRE = regexp.MustCompile(`KVM internal error.*|kvm_buf_set_msrs.*|failed to set MSR.*|KVM: entry failed.*|kvm run failed.*`)
	// A guest that shut itself down (or rebooted, which ends the VMM).
	shutdownRE = regexp.MustCompile(`reboot: (Restarting system|Power down|System halted|Power off not available)`)
	// A guest kernel that halted or powered off: without ACPI no microVM
	// VMM exits then, so banger ends it. (Without ACPI the kernel says
	// "reboot: Power off not available: System halted instead".)
	haltRE = regexp.MustCompile(`reboot: (Power down|System halted|Power off not available.*)\s*$`)
	// QEMU's own messages.
	qemuRE = regexp.MustCompile(`(?m)^qemu-system-\S+: (.*)$`)
)

// kvmFailure is the reason given for a VM whose console shows KVM
// failing with line.
func kvmFailure(line string) string {
	return "KVM failed: " + strings.TrimSpace(line) + " (" + kvmHint + ")"
}

// kvmHint is the fix for a host whose /dev/kvm cannot run guests.
const kvmHint = "hint: this host's KVM cannot run the guest (e.g. kvm_pvm, or nested virtualization without vmx/svm); run with BANGER_QEMU_ACCEL=tcg for software emulation"

// panicLine returns the kernel panic line in log, "" if none.
func panicLine(log string) string {
	return panicRE.FindString(log)
}

// crashReason explains, from a boot's console output, why the VMM is gone
// when nobody asked it to stop. crashed is false when the guest shut down by
// itself (a clean stop, not a crash).
func crashReason(log string) (reason string, crashed bool) {
	if l := panicLine(log); l != "" {
		return "kernel panic: " + strings.TrimSpace(strings.TrimPrefix(l, "Kernel panic - ")), true
	}
	if l := kvmRE.FindString(log); l != "" {
		return kvmFailure(l), true
	}
	if shutdownRE.MatchString(log) {
		return "the guest shut down", false
	}
	for _, m := range slices.Backward(qemuRE.FindAllStringSubmatch(log, -1)) {
		if msg := strings.TrimSpace(m[1]); !strings.HasPrefix(msg, "warning:") {
			return "QEMU: " + msg, true
		}
	}
	last := logtail.Lines(log, 1)
	if len(last) == 0 {
		return "the VMM process exited or was killed before the guest wrote anything", true
	}
	return "the VMM process exited or was killed; last console line: " + timestampRE.ReplaceAllString(last[0], ""), true
}
