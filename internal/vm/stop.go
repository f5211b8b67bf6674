package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/logtail"
	"github.com/thaloco/banger/internal/netsetup"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/stagedir"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// DefaultStopTimeout bounds a graceful stop before the VMM is killed.
const DefaultStopTimeout = 30 * time.Second

// StopOptions tune Stop.
type StopOptions struct {
	// Force kills the VMM at once instead of asking the guest to shut down.
	Force bool
	// Timeout bounds the graceful shutdown; then the VMM is killed. 0
	// means DefaultStopTimeout.
	Timeout time.Duration
}

// Stop shuts the VM called name down: Ctrl-Alt-Del to the guest, a wait
// of up to Timeout for the VMM to exit, then SIGTERM and SIGKILL. It
// reports whether the VM was running.
func (s *Store) Stop(ctx context.Context, name string, o StopOptions) (wasRunning bool, err error) {
	l, err := s.lock(ctx, name)
	if err != nil {
		return false, err
	}
	defer l.Unlock()
	v, err := s.open(name)
	if err != nil {
		return false, err
	}
	if reconcileLocked(v) {
		if err := v.saveState(); err != nil {
			return false, err
		}
	}
	if !v.State.Status.active() {
		return false, nil
	}
	return true, s.stopLocked(ctx, v, o)
}

// stopLocked stops v's VMM; the caller holds its lock.
func (s *Store) stopLocked(ctx context.Context, v *VM, o StopOptions) error {
	if o.Timeout == 0 {
		o.Timeout = DefaultStopTimeout
	}
	v.State.Status = StatusStopping
	if err := v.saveState(); err != nil {
		return err
	}
	gone := false
	if !o.Force {
		err := s.shutdown(ctx, v)
		sshOnly := errors.Is(err, vmm.ErrNoShutdown) && v.canSSHReboot()
		switch {
		case sshOnly:
			// Firecracker on arm64: nothing to press, so ask the guest.
			s.logf("VM %q: %v; asking it over SSH to reboot", v.Name(), err)
			s.rebootOverSSH(ctx, v)
			gone = s.waitShutdown(ctx, v, o.Timeout, true)
		case err != nil:
			s.logf("VM %q: %v; killing it", v.Name(), err)
		default:
			gone = s.waitShutdown(ctx, v, o.Timeout, false)
		}
		if (err == nil || sshOnly) && !gone && ctx.Err() == nil {
			s.logf("VM %q did not shut down within %v; killing it", v.Name(), o.Timeout)
		}
	}
	// A guest that halted or powered off may leave its VMM running
	// (microvm) or about to exit (virt's PSCI power-off): end it too.
	if !gone || v.State.Process().Alive() {
		grace := 3 * time.Second
		if o.Force {
			grace = 0
		}
		if err := v.State.Process().Kill(grace); err != nil {
			return fmt.Errorf("stopping VM %q: %w", v.Name(), err)
		}
	}
	markGone(v)
	return v.saveState()
}

// sshRebootAfter is how long a guest gets to react to Ctrl-Alt-Del (or
// the power button) before banger also asks it over SSH (guests whose
// kernel lacks the i8042 keyboard driver never see Ctrl-Alt-Del): 5 s,
// and under software emulation (TCG), where a systemd shutdown starts
// many times slower, a third of the stop's timeout, up to 30 s.
func sshRebootAfter(v *VM, timeout time.Duration) time.Duration {
	const native, emulatedMax = 5 * time.Second, 30 * time.Second
	if v.State.Accel != "tcg" {
		return native
	}
	return min(max(native, timeout/3), emulatedMax)
}

// canSSHReboot reports whether banger can ask v's guest over SSH to
// reboot.
func (v *VM) canSSHReboot() bool { return v.Config.Ready == ReadySSH && v.sshAddr() != "" }

// waitShutdown waits up to timeout for v's VMM to exit after Ctrl-Alt-Del
// (or the power button). If it still runs after sshRebootAfter and the
// guest has SSH, the guest is also asked to reboot over SSH, unless
// asked says it was already (a reboot ends the VMM: -no-reboot, or
// Firecracker's exit on reset). A guest that halted instead (the kernel's
// "reboot: Power down", which ends no microVM VMM) counts as gone.
func (s *Store) waitShutdown(ctx context.Context, v *VM, timeout time.Duration, asked bool) bool {
	deadline := time.Now().Add(timeout)
	asked = asked || !v.canSSHReboot()
	after := sshRebootAfter(v, timeout)
	for {
		if !v.State.Process().Alive() || guestHalted(v) {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		if !asked && time.Until(deadline) < timeout-after {
			asked = true
			s.logf("VM %q still runs %v after %s; asking it over SSH to reboot", v.Name(), after, shutdownKey(v))
			s.rebootOverSSH(ctx, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdownKey names what Shutdown pressed in v's guest.
func shutdownKey(v *VM) string {
	if v.Config.GuestArch() == arch.ARM64 {
		return "the power button"
	}
	return "Ctrl-Alt-Del"
}

// rebootOverSSH asks the guest to reboot over SSH, best effort.
func (s *Store) rebootOverSSH(ctx context.Context, v *VM) {
	kp, err := sshkey.Ensure(s.Layout.SSHDir())
	if err != nil {
		return
	}
	target := &guest.SSH{Addr: v.sshAddr(), KeyPath: kp.PrivatePath, KnownHosts: v.KnownHosts(), Name: v.Name()}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := target.Connect(cctx, 0)
	if err != nil {
		return
	}
	defer func() { _ = c.Close() }()
	_, _ = guest.Run(cctx, c, "systemctl reboot 2>/dev/null || reboot", nil, io.Discard, io.Discard)
}

// guestHalted reports whether the guest kernel halted or powered off (its
// last console lines say so) while the VMM lives on.
func guestHalted(v *VM) bool {
	return haltRE.MatchString(logtail.ReadFrom(v.ConsoleLog(), v.State.ConsoleOffset, 4096))
}

// shutdown asks v's guest to shut down through its driver.
func (s *Store) shutdown(ctx context.Context, v *VM) error {
	drv, err := s.driver(v)
	if err != nil {
		return err
	}
	m := vmm.Machine{Name: v.Name(), Dir: v.Dir, ConsoleLog: v.ConsoleLog(), Arch: v.Config.GuestArch()}
	p := vmm.Process{PID: v.State.PID, APISocket: v.State.APISocket, ConsoleSocket: v.State.ConsoleSocket}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return drv.Shutdown(sctx, m, p)
}

// Remove deletes the VM called name: its directory, disk and network.
// A running VM is refused unless force, which kills its VMM first.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	l, err := s.lock(ctx, name)
	if err != nil {
		return err
	}
	defer l.Unlock()
	dir := s.Layout.VM(name)
	v, err := s.open(name)
	switch {
	case err == nil:
		if reconcileLocked(v) {
			_ = v.saveState()
		}
		if v.State.Status.active() {
			if !force {
				return &RunningError{Name: name}
			}
			if err := v.State.Process().Kill(0); err != nil {
				return fmt.Errorf("removing VM %q: %w", name, err)
			}
		}
		if err := s.teardownNet(ctx, v); err != nil {
			return fmt.Errorf("removing VM %q: %w", name, err)
		}
		if jail := s.jailDir(v); jail != "" {
			if err := os.RemoveAll(jail); err != nil {
				return fmt.Errorf("removing VM %q's jail %s: %w", name, jail, err)
			}
		}
	case errors.As(err, new(*BrokenError)) && force:
		// A broken VM: its record cannot be read. Its VMM is found by its
		// command line, its network by the VM's name.
		if _, err := vmmproc.KillStrays(dir, vmmproc.ID{}); err != nil {
			return fmt.Errorf("removing VM %q: %w", name, err)
		}
		if cfg, err := s.netConfig(); err == nil {
			if err := netsetup.Teardown(ctx, cfg, name); err != nil {
				return fmt.Errorf("removing VM %q: %w", name, err)
			}
		}
		// A jail, if it was a jailed Firecracker VM: found by name too.
		if jail := s.jailDir(&VM{Config: Config{Name: name, VMM: VMMFirecracker, Jailer: true}, Dir: dir}); jail != "" {
			if err := os.RemoveAll(jail); err != nil {
				return fmt.Errorf("removing VM %q's jail %s: %w", name, jail, err)
			}
		}
	default:
		return err
	}
	if n, err := vmmproc.KillStrays(dir, vmmproc.ID{}); err != nil {
		return fmt.Errorf("removing VM %q: %w", name, err)
	} else if n > 0 {
		s.logf("VM %q: killed %d VMM process(es) its record had lost", name, n)
	}
	if err := stagedir.Remove(s.Layout.VMsDir(), name); err != nil {
		return fmt.Errorf("removing VM %q: %w", name, err)
	}
	return nil
}
