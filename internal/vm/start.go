package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/logtail"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
	"golang.org/x/crypto/ssh"
)

// DefaultReadyTimeout bounds the wait for a guest to become ready.
const DefaultReadyTimeout = 2 * time.Minute

// StartOptions tune Start.
type StartOptions struct {
	// Timeout bounds the wait for the guest to be ready; 0 means
	// DefaultReadyTimeout.
	Timeout time.Duration
	// KeepSSH, if not nil, receives the SSH connection a restore opened
	// for the clone identity step, left open so the caller can run its
	// command without a second handshake (it must close it). It stays nil
	// when the start made none to hand over (a boot, or --net tap, whose
	// step runs through an isolated namespace).
	KeepSSH **ssh.Client
	// InitScriptTimeout bounds the VM's init script (first start only);
	// 0 means DefaultInitScriptTimeout.
	InitScriptTimeout time.Duration
}

// Start boots the VM called name and waits until the guest is ready (its
// SSH server answers, or its console shows the ready marker). The VMM is
// detached and keeps running after banger exits. If the boot fails, times
// out or ctx ends, the VMM is killed and the VM is left stopped (or
// crashed, with the reason).
func (s *Store) Start(ctx context.Context, name string, o StartOptions) (*VM, error) {
	l, err := s.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	v, err := s.open(name)
	if err != nil {
		return nil, err
	}
	if reconcileLocked(v) {
		if err := v.saveState(); err != nil {
			return nil, err
		}
	}
	if v.State.Status.active() {
		if resumed, err := s.resumeIfPaused(ctx, v); err != nil || resumed {
			return v, err
		}
		return v, fmt.Errorf("VM %q is already running", name)
	}
	return v, s.startLocked(ctx, v, o)
}

// startLocked boots v; the caller holds its lock.
func (s *Store) startLocked(ctx context.Context, v *VM, o StartOptions) error {
	if v.State.RestorePending {
		return s.restoreLocked(ctx, v, o)
	}
	m, drv, err := s.machine(ctx, v)
	if err != nil {
		return fmt.Errorf("starting VM %q: %w", v.Name(), err)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultReadyTimeout
	}
	var offset int64
	if st, err := os.Stat(m.ConsoleLog); err == nil {
		offset = st.Size()
	}
	v.State.Status, v.State.Reason = StatusStarting, ""
	v.State.ConsoleOffset = offset
	v.State.StartedAt, v.State.StoppedAt = time.Now().UTC(), time.Time{}
	v.State.Boot, v.State.Path, v.State.Identity = Timings{}, PathBoot, ""
	if err := v.saveState(); err != nil {
		return err
	}
	t0 := time.Now()
	p, err := drv.Start(ctx, m)
	if err != nil {
		if l := kvmRE.FindString(logtail.ReadFrom(m.ConsoleLog, offset, 1<<20)); l != "" && m.Accel == "kvm" {
			err = fmt.Errorf("starting VM %q: %w", v.Name(), &BootError{Reason: kvmFailure(l), Crashed: true})
		}
		s.failStart(v, err)
		return err // the driver's errors name the VM
	}
	v.State.PID, v.State.APISocket, v.State.ConsoleSocket = p.PID, p.APISocket, p.ConsoleSocket
	v.State.PIDStart, _ = vmmproc.StartTime(p.PID)
	v.State.Boot.VMM = time.Since(t0)
	if err := v.saveState(); err != nil {
		_ = v.State.Process().Kill(0)
		return err
	}
	if err := s.waitReady(ctx, v, t0, o.Timeout); err != nil {
		_ = v.State.Process().Kill(0)
		s.failStart(v, err)
		return fmt.Errorf("starting VM %q: %w", v.Name(), err)
	}
	if v.Config.hasSetup() {
		if err := s.setupAfterReady(ctx, v, o); err != nil {
			_ = v.State.Process().Kill(0)
			s.failStart(v, err)
			return fmt.Errorf("starting VM %q: %w", v.Name(), err)
		}
		v.State.Boot.Ready = time.Since(t0)
	}
	v.State.Status = StatusRunning
	return v.saveState()
}

// failStart records a failed start: crashed when the guest or VMM
// failed, stopped when the start was interrupted or could not begin.
func (s *Store) failStart(v *VM, err error) {
	var be *BootError
	switch {
	case errors.As(err, &be) && be.Crashed:
		v.State.Status, v.State.Reason = StatusCrashed, be.Reason
	case errors.As(err, &be):
		v.State.Status, v.State.Reason = StatusStopped, "start failed: "+be.Reason
	default:
		v.State.Status = StatusStopped
		v.State.Reason = "start failed: " + firstLine(err.Error())
		if errors.Is(err, context.Canceled) {
			v.State.Reason = "start interrupted"
		}
	}
	clearRuntime(v)
	_ = v.saveState()
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// machine resolves what the VMM needs to boot v: kernel, accelerator,
// network, command line.
func (s *Store) machine(ctx context.Context, v *VM) (vmm.Machine, vmm.Driver, error) {
	drv, err := s.driver(v)
	if err != nil {
		return vmm.Machine{}, nil, err
	}
	guestArch := v.Config.GuestArch()
	if ac, ok := drv.(vmm.ArchChecker); ok {
		err = ac.CheckArch(guestArch)
	} else {
		err = drv.Check()
	}
	if err != nil {
		return vmm.Machine{}, nil, err
	}
	k, err := kernelstore.New(s.Layout.KernelsDir).Get(v.Config.Kernel)
	if err != nil {
		return vmm.Machine{}, nil, err
	}
	// The kernel may have been replaced by another architecture's since
	// the VM was created.
	if err := checkKernelArch(v.Name(), guestArch, k); err != nil {
		return vmm.Machine{}, nil, err
	}
	if err := kernelstore.VerifyVMLinux(k); err != nil {
		return vmm.Machine{}, nil, err
	}
	if err := s.checkDisk(v); err != nil {
		return vmm.Machine{}, nil, err
	}
	m := vmm.Machine{
		Name: v.Name(), Kernel: k.VMLinux(), Initrd: k.Initrd(), Rootfs: v.DiskPath(), RootfsFormat: v.Config.Disk.Format,
		CPUs: v.Config.CPUs, MemoryMiB: v.Config.MemoryMiB, Dir: v.Dir, ConsoleLog: v.ConsoleLog(),
		Accel: "kvm", Arch: guestArch,
	}
	if v.Config.VMM == VMMQEMU {
		if m.Accel, err = s.qemuAccel(guestArch); err != nil {
			return vmm.Machine{}, nil, err
		}
	}
	v.State.Accel = m.Accel
	v.State.SSHPort, v.State.Tap, v.State.GuestAddr, v.State.HostAddr = 0, "", "", ""
	ipArg, err := s.setupNet(ctx, v, &m)
	if err != nil {
		return vmm.Machine{}, nil, err
	}
	machineSetup(v, &m)
	m.Cmdline = strings.TrimSpace(ipArg + " " + v.Config.KernelArgs)
	v.State.Argv = nil
	if a, ok := drv.(argvDriver); ok {
		if v.State.Argv, err = a.Args(m); err != nil {
			return vmm.Machine{}, nil, err
		}
	}
	return m, drv, nil
}

// resumeIfPaused resumes v's guest if its VMM holds it paused, as a
// "banger vm snapshot" killed half-way leaves it, and reports whether it
// did.
func (s *Store) resumeIfPaused(ctx context.Context, v *VM) (bool, error) {
	drv, err := s.driver(v)
	if err != nil {
		return false, err
	}
	sn, ok := drv.(vmm.Snapshotter)
	if !ok {
		return false, nil
	}
	p := vmm.Process{PID: v.State.PID, APISocket: v.State.APISocket}
	resumed, err := sn.Unpause(ctx, vmm.Machine{Name: v.Name()}, p)
	if err != nil || !resumed {
		return false, err
	}
	s.logf("VM %q was paused (an interrupted snapshot?); resumed it", v.Name())
	return true, nil
}
