// Package qemu runs microVMs with QEMU: x86_64 guests on the microvm
// machine (qemu-system-x86_64 -M microvm), arm64 guests on the virt
// machine (qemu-system-aarch64 -M virt). Both get direct kernel boot,
// virtio-mmio block and network devices, the serial console on a unix
// socket that is also logged to a file, and QMP on a second unix socket
// for control. The QEMU process is detached from banger and outlives it.
//
// Shutdown on x86_64 sends Ctrl-Alt-Del through an emulated i8042
// keyboard controller, as Firecracker does: the guest's init decides what
// to do with it (systemd and busybox init reboot), and a guest reboot ends
// QEMU (-no-reboot). microvm runs without ACPI, so there is no power
// button. virt has one (a PL061 GPIO key): on arm64 Shutdown presses it
// (system_powerdown), and a guest that powers off or reboots (PSCI) ends
// QEMU.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// Files the driver keeps in a VM's state directory.
const (
	QMPSocketName     = "qmp.sock"
	ConsoleSocketName = "console.sock"
)

// DefaultBinary is the QEMU executable of x86_64 guests, looked up on
// PATH; arm64 guests run qemu-system-aarch64.
const DefaultBinary = "qemu-system-x86_64"

// Driver is the QEMU vmm.Driver. The zero value runs qemu-system-x86_64
// (x86_64 guests) or qemu-system-aarch64 (arm64 guests) from PATH.
type Driver struct {
	// Binary is the QEMU executable for every guest: a path or a name
	// looked up on PATH. Empty means the guest architecture's
	// (DefaultBinary for x86_64).
	Binary string
	// Arch is the guest architecture Check and Version are about ("" is
	// x86_64); Start and the snapshot calls follow each Machine's Arch.
	Arch string
	// TSCKHz is the host TSC frequency passed to TCG guests as
	// tsc_early_khz (without it, TCG boots now and then hang calibrating
	// the TSC). Zero reads it from /proc/cpuinfo.
	TSCKHz int
	// SocketTimeout bounds the wait for QEMU's QMP socket. Zero means 10s.
	SocketTimeout time.Duration
}

var (
	_ vmm.Driver      = (*Driver)(nil)
	_ vmm.ArchChecker = (*Driver)(nil)
)

// Name returns "qemu".
func (d *Driver) Name() string { return "qemu" }

// Check reports whether the QEMU binary of d.Arch's guests can be found.
func (d *Driver) Check() error { return d.CheckArch(d.Arch) }

// CheckArch reports whether the QEMU binary of guests of architecture a
// ("" is x86_64) can be found.
func (d *Driver) CheckArch(a string) error {
	_, err := d.binary(a)
	return err
}

// binary is the absolute path of the QEMU executable of guests of
// architecture a.
func (d *Driver) binary(a string) (string, error) {
	t, err := targetFor(a)
	if err != nil {
		return "", err
	}
	name := d.Binary
	if name == "" {
		name = t.binary
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			nf := &vmm.NotFoundError{Program: name, Install: fmt.Sprintf("install the %s package (sudo apt-get install %s)", t.pkg, t.pkg)}
			if t.x86 {
				nf.Other = "firecracker"
			}
			return "", nf
		}
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return filepath.Abs(p)
}

// Start spawns QEMU detached, waits until its QMP socket answers and the
// machine runs, and returns. On failure, including ctx ending, the QEMU
// process is killed and the error quotes what it printed.
func (d *Driver) Start(ctx context.Context, m vmm.Machine) (vmm.Process, error) {
	argv, err := d.Args(m)
	if err != nil {
		return vmm.Process{}, err
	}
	p, err := vmmproc.Spawn(argv, m.ConsoleLog)
	if err != nil {
		return vmm.Process{}, fmt.Errorf("starting QEMU for VM %q: %w", m.Name, err)
	}
	timeout := d.SocketTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	q := &QMP{Socket: filepath.Join(m.Dir, QMPSocketName)}
	if err := waitRunning(ctx, p, q, timeout); err != nil {
		p.Kill()
		return vmm.Process{}, fmt.Errorf("starting QEMU for VM %q: %w", m.Name, err)
	}
	return vmm.Process{
		PID:           p.PID(),
		APISocket:     q.Socket,
		ConsoleSocket: filepath.Join(m.Dir, ConsoleSocketName),
	}, nil
}

// Shutdown presses Ctrl-Alt-Del on the guest's keyboard controller
// (x86_64), or the power button (arm64: system_powerdown, a GPIO key the
// guest sees as KEY_POWER). It does not wait for QEMU to exit.
func (d *Driver) Shutdown(ctx context.Context, m vmm.Machine, p vmm.Process) error {
	q := &QMP{Socket: p.APISocket}
	if m.Arch == arch.ARM64 {
		if err := q.Execute(ctx, "system_powerdown", nil, nil); err != nil {
			return fmt.Errorf("stopping VM %q: %w", m.Name, err)
		}
		return nil
	}
	keys := []map[string]string{
		{"type": "qcode", "data": "ctrl"},
		{"type": "qcode", "data": "alt"},
		{"type": "qcode", "data": "delete"},
	}
	if err := q.Execute(ctx, "send-key", map[string]any{"keys": keys}, nil); err != nil {
		return fmt.Errorf("stopping VM %q: %w", m.Name, err)
	}
	return nil
}

// Status returns QEMU's run state ("running", "paused", "internal-error",
// "guest-panicked", "shutdown", ...) as QMP query-status reports it.
func (d *Driver) Status(ctx context.Context, p vmm.Process) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	q := &QMP{Socket: p.APISocket}
	if err := q.Execute(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}
