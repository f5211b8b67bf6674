package qemu

import (
	"fmt"
	"strconv"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/vmm"
)

// target is what differs between the guest architectures QEMU runs.
type target struct {
	binary  string // QEMU executable looked up on PATH
	pkg     string // the Debian package that has it
	machine string // -M, before accel= and memory-backend=
	// ramID names the guest RAM's memory backend: the name the machine
	// gives its RAM when -m alone sizes it, so migration streams of
	// either kind load into each other.
	ramID string
	// defaultArgs are the kernel arguments every guest gets before the
	// caller's (see x86Args, arm64Args).
	defaultArgs string
	// x86 guests get an i8042 (Ctrl-Alt-Del), and under TCG the kernel
	// arguments that keep their timer calibration from hanging.
	x86 bool
}

// x86Args: the serial console, the root disk, reboot by triple fault
// (microvm has no reset register; reboot=k would cost ~1.5s of retries),
// reboot at once on panic (QEMU then exits: -no-reboot), and the i8042
// driver kept (Ctrl-Alt-Del) but not probed at length.
const x86Args = "console=ttyS0 root=/dev/vda rw rootfstype=ext4 reboot=t panic=-1 i8042.noaux i8042.nomux i8042.nopnp"

// arm64Args: the PL011 serial console of QEMU's virt machine (ttyAMA0),
// the root disk, and reboot at once on panic. Reboots and power-offs go
// through PSCI, which ends QEMU (-no-reboot).
const arm64Args = "console=ttyAMA0 root=/dev/vda rw rootfstype=ext4 panic=-1"

var targets = map[string]target{
	arch.X86_64: {
		binary: "qemu-system-x86_64", pkg: "qemu-system-x86", machine: "microvm,acpi=off",
		ramID: "microvm.ram", defaultArgs: x86Args, x86: true,
	},
	// virt: a device tree machine with virtio-mmio transports, a PL011
	// UART and a PL061 GPIO power button (system_powerdown). gic-version
	// max is GICv3 under TCG and the host's GIC under KVM.
	arch.ARM64: {
		binary: "qemu-system-aarch64", pkg: "qemu-system-arm", machine: "virt,gic-version=max",
		ramID: "mach-virt.ram", defaultArgs: arm64Args,
	},
}

// targetFor returns the target of guest architecture a ("" is x86_64).
func targetFor(a string) (target, error) {
	if a == "" {
		a = arch.X86_64
	}
	t, ok := targets[a]
	if !ok {
		return target{}, fmt.Errorf("QEMU cannot run %q guests (hint: use x86_64 or arm64)", a)
	}
	return t, nil
}

// cmdline is the guest's kernel command line: the target's defaults, then
// what the caller asked for.
func (t target) cmdline(d *Driver, m vmm.Machine) string {
	cmdline := m.Cmdline
	if t.x86 && m.Accel == "tcg" {
		khz := d.TSCKHz
		if khz == 0 {
			khz = hostTSCKHz()
		}
		if khz > 0 {
			cmdline = "tsc_early_khz=" + strconv.Itoa(khz) + " " + cmdline
		}
		// On a loaded host the emulated vCPU can run too slowly for the
		// kernel's check that the PIT timer reaches the IO-APIC, and it
		// panics ("IO-APIC + timer doesn't work"): skip the check.
		cmdline = "no_timer_check " + cmdline
	}
	return vmm.MergeCmdline(t.defaultArgs, cmdline)
}

// orderDisks puts the virtio-blk devices of argv (a complete command
// line) in the order the guest must find them. On virt, QEMU plugs each
// -device into the free virtio-mmio transport of highest address, and
// Linux probes the transports from the lowest: the last disk given
// would be /dev/vda. So for arm64 the disks' -device options are
// reversed (the -drive options stay), keeping the rootfs /dev/vda and
// the extra drives /dev/vdb, … in their order, as on x86.
func (t target) orderDisks(argv []string) []string {
	if t.x86 {
		return argv
	}
	var at []int // indexes of the values of -device virtio-blk-device,…
	for i := 1; i < len(argv); i++ {
		if argv[i-1] == "-device" && len(argv[i]) > len("virtio-blk-device,") && argv[i][:len("virtio-blk-device,")] == "virtio-blk-device," {
			at = append(at, i)
		}
	}
	out := append([]string(nil), argv...)
	for j, i := range at {
		out[i] = argv[at[len(at)-1-j]]
	}
	return out
}
