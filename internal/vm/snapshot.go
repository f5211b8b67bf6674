package vm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/diskcopy"
	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guestinit"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/netsetup"
	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/qemu"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
	"golang.org/x/crypto/ssh"
)

// SnapshotOptions tune Snapshot.
type SnapshotOptions struct {
	// Stop shuts the VM down after the snapshot instead of resuming it
	// for good.
	Stop bool
	// WarmFor records the snapshot as the warm start of this image.
	WarmFor string
}

// Snapshot pauses the running VM called name, saves its memory and device
// state and a copy of its disk (taken while paused, so the two agree) as
// the snapshot snap, and resumes it (then stops it with o.Stop). Whatever
// fails or interrupts it, the VM is resumed and no partial snapshot is
// left visible.
func (s *Store) Snapshot(ctx context.Context, name, snap string, o SnapshotOptions) (*snapshot.Manifest, error) {
	snaps := snapshot.New(s.Layout)
	sl, err := snaps.Lock(ctx, snap)
	if err != nil {
		return nil, err
	}
	defer sl.Unlock()
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
		_ = v.saveState()
	}
	if v.State.Status != StatusRunning {
		return nil, notRunning(v)
	}
	if len(v.Config.Mounts) > 0 || len(v.Config.CopyIns) > 0 {
		return nil, &VMError{Name: name, Err: ErrSnapshotDevices}
	}
	drv, err := s.driver(v)
	if err != nil {
		return nil, err
	}
	sn, ok := drv.(vmm.Snapshotter)
	if !ok {
		return nil, fmt.Errorf("VM %q: %s cannot take snapshots", name, drv.Name())
	}
	man := &snapshot.Manifest{
		SourceVM: name, Image: v.Config.Image, Kernel: v.Config.Kernel, VMM: v.Config.VMM, Accel: v.State.Accel, Arch: v.Config.GuestArch(),
		CPUs: v.Config.CPUs, MemoryMiB: v.Config.MemoryMiB, Net: v.Config.Net, HostAccess: v.Config.HostAccess, KernelArgs: v.Config.KernelArgs,
		Ready: v.Config.Ready, ReadyMarker: v.Config.ReadyMarker, WarmFor: o.WarmFor,
	}
	if man.VMMVersion, err = s.vmmVersion(sn); err != nil {
		return nil, err
	}
	if v.Config.Net == NetTap {
		l, err := s.lease(name)
		if err != nil {
			return nil, err
		}
		man.TapGuest, man.TapHost = l.GuestAddr.String(), l.HostAddr.String()
	}
	if man.KernelSHA256, err = s.kernelSHA256(v.Config.Kernel); err != nil {
		return nil, err
	}
	if v.Config.Image != "" {
		if im, err := image.New(s.Layout.ImagesDir()).Get(v.Config.Image); err == nil {
			man.ImageSHA256 = im.RootfsSHA256
		}
	}
	if d := v.Config.Disk; d.Format == DiskQcow2 {
		// The snapshot's disk is a copy of the overlay: small, and reading
		// from the same image rootfs.
		man.DiskFormat, man.DiskBacking, man.DiskBackingSHA256 = snapshot.DiskQcow2, d.Backing, d.BackingSHA256
		man.DiskVirtualSize = v.Config.DiskSize
	}
	stage, err := snaps.NewStage(snap)
	if err != nil {
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			stage.Abort()
		}
	}()
	m := vmm.Machine{Name: name, Dir: v.Dir, ConsoleLog: v.ConsoleLog(), Rootfs: v.DiskPath(), MemoryMiB: v.Config.MemoryMiB, Arch: v.Config.GuestArch()}
	p := vmm.Process{PID: v.State.PID, APISocket: v.State.APISocket, ConsoleSocket: v.State.ConsoleSocket}
	t0 := time.Now()
	if err := sn.Pause(ctx, m, p); err != nil {
		return nil, err
	}
	resumed := false
	resume := func() error {
		if resumed {
			return nil
		}
		resumed = true
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return sn.Resume(rctx, m, p)
	}
	defer func() { _ = resume() }()
	files, err := sn.SaveState(ctx, m, p, stage.Dir)
	if err != nil {
		return nil, diskErr(err, snaps.Dir())
	}
	if err := diskcopy.Copy(ctx, filepath.Join(stage.Dir, man.DiskFileName()), v.DiskPath()); err != nil {
		return nil, fmt.Errorf("snapshot %q: copying the disk of VM %q: %w", snap, name, diskErr(err, snaps.Dir()))
	}
	man.SaveTime = time.Since(t0)
	if err := resume(); err != nil {
		return nil, err
	}
	if err := copyIfExists(v.KnownHosts(), filepath.Join(stage.Dir, snapshot.KnownHostsFile)); err != nil {
		return nil, err
	}
	for _, f := range append(files, man.DiskFileName()) {
		path := filepath.Join(stage.Dir, f)
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, err
		}
		if f == man.DiskFileName() {
			man.DiskSize = st.Size()
			continue
		}
		man.StateFiles = append(man.StateFiles, snapshot.File{Name: f, Size: st.Size(), DiskUsage: snapshot.Usage(path)})
	}
	man.CreatedAt = time.Now().UTC()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := stage.Publish(man); err != nil {
		return nil, diskErr(err, snaps.Dir())
	}
	published = true
	if o.Stop {
		if err := s.stopLocked(ctx, v, StopOptions{}); err != nil {
			return man, err
		}
	}
	return man, nil
}

// copyIfExists copies a small file, private, if src exists.
func copyIfExists(src, dst string) error {
	data, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o600)
}

// kernelSHA256 is the sha256 of the installed kernel's vmlinux, from its
// manifest.
func (s *Store) kernelSHA256(kernel string) (string, error) {
	k, err := kernelstore.New(s.Layout.KernelsDir).Get(kernel)
	if err != nil {
		return "", err
	}
	for _, f := range k.Files {
		if f.Path == "vmlinux" {
			return f.SHA256, nil
		}
	}
	return "", fmt.Errorf("kernel %q lists no vmlinux in its manifest", kernel)
}

// planSnapshot fills cfg from the snapshot called name for a VM that will
// restore it, refusing options that contradict it. It returns the disk
// to copy.
func (s *Store) planSnapshot(cfg *Config, o CreateOptions) (string, error) {
	snap, err := snapshot.New(s.Layout).Get(o.Snapshot)
	if err != nil {
		return "", err
	}
	conflict := func(e *option.Error, want string) error {
		e.Problem = fmt.Sprintf("conflicts with snapshot %q, which has %s", snap.Name, want)
		e.Hint = "drop {" + e.Option + "}; a restored VM keeps the snapshot's"
		return e
	}
	switch {
	case o.Image != "" || o.Rootfs != "" || o.Kernel != "":
		return "", &option.Error{Problem: "give a snapshot or an image (or {kernel} and {rootfs}), not both"}
	case o.CPUs != 0 && o.CPUs != snap.CPUs:
		return "", conflict(&option.Error{Option: "cpus", Value: strconv.Itoa(o.CPUs)}, strconv.Itoa(snap.CPUs))
	case o.MemoryMiB != 0 && o.MemoryMiB != snap.MemoryMiB:
		return "", conflict(&option.Error{Option: "memory", Value: fmt.Sprintf("%dM", o.MemoryMiB)}, fmt.Sprintf("%dM", snap.MemoryMiB))
	case o.Net != "" && o.Net != snap.Net:
		return "", conflict(&option.Error{Option: "net", Value: o.Net}, snap.Net)
	case o.HostAccess != "" && snap.Net != NetUser:
		return "", &option.Error{Option: "host-access", Problem: fmt.Sprintf("applies only to {net} user; snapshot %q uses {net} %s", snap.Name, snap.Net)}
	case o.HostAccess != "" && o.HostAccess != snap.HostAccess:
		return "", conflict(&option.Error{Option: "host-access", Value: o.HostAccess}, snap.HostAccess)
	case o.VMM != "" && o.VMM != "auto" && o.VMM != snap.VMM:
		return "", conflict(&option.Error{Option: "vmm", Value: o.VMM}, snap.VMM)
	case o.DiskSize != 0:
		return "", &option.Error{Option: "disk-size", Problem: fmt.Sprintf("cannot change the disk of a restored guest (snapshot %q); its disk is the snapshot's", snap.Name)}
	case o.KernelArgs != "" || o.ReadyMarker != "" || o.Jailer:
		return "", &option.Error{Problem: "{kernel-args}, {ready-marker} and {jailer} do not apply to a VM restored from a snapshot"}
	}
	cfg.Snapshot, cfg.Image, cfg.Kernel, cfg.VMM = snap.Name, snap.Image, snap.Kernel, snap.VMM
	cfg.Arch = arch.Or(snap.Arch, arch.X86_64)
	if o.Arch != "" && arch.Or(o.Arch, "") != cfg.Arch {
		return "", conflict(&option.Error{Option: "arch", Value: o.Arch}, cfg.Arch)
	}
	cfg.CPUs, cfg.MemoryMiB, cfg.Net, cfg.DiskSize = snap.CPUs, snap.MemoryMiB, snap.Net, snap.GuestDiskSize()
	if snap.DiskFormat == snapshot.DiskQcow2 {
		cfg.Disk = Disk{Format: DiskQcow2, Backing: snap.DiskBacking, BackingSHA256: snap.DiskBackingSHA256}
	}
	cfg.HostAccess = snap.HostAccess
	cfg.Ready, cfg.ReadyMarker, cfg.KernelArgs = snap.Ready, snap.ReadyMarker, snap.KernelArgs
	if snap.Net != NetUser && len(cfg.Forwards) > 0 {
		return "", &option.Error{Option: "publish", Problem: fmt.Sprintf("forwards ports only with user networking; snapshot %q uses {net} %s", snap.Name, snap.Net)}
	}
	if err := s.checkRestorable(snap); err != nil {
		return "", err
	}
	return snap.DiskPath(), nil
}

// StaleError says why a snapshot can no longer be restored here.
type StaleError struct {
	Snapshot, Reason string
	// Hint is the way out; "" means taking the snapshot again.
	Hint string
}

func (e *StaleError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "take it again, or boot without it"
	}
	return fmt.Sprintf("snapshot %q cannot be restored: %s (hint: %s)", e.Snapshot, e.Reason, hint)
}

// checkRestorable refuses a snapshot whose kernel, image or VMM changed
// since it was taken.
func (s *Store) checkRestorable(snap *snapshot.Manifest) error {
	stale := func(format string, a ...any) error {
		return &StaleError{Snapshot: snap.Name, Reason: fmt.Sprintf(format, a...)}
	}
	sum, err := s.kernelSHA256(snap.Kernel)
	if err != nil {
		return stale("its kernel: %v", err)
	}
	if sum != snap.KernelSHA256 {
		return stale("kernel %q changed since (vmlinux sha256 %.12s…, the snapshot's %.12s…)", snap.Kernel, sum, snap.KernelSHA256)
	}
	if snap.DiskFormat == snapshot.DiskQcow2 {
		if err := s.checkSnapshotBacking(snap.Name, snap.Image, snap.DiskBacking, snap.DiskBackingSHA256); err != nil {
			return err
		}
	}
	if snap.ImageSHA256 != "" && snap.WarmFor != "" {
		im, err := image.New(s.Layout.ImagesDir()).Get(snap.Image)
		if err != nil {
			return stale("its image: %v", err)
		}
		if im.RootfsSHA256 != snap.ImageSHA256 {
			return stale("image %q was rebuilt since", snap.Image)
		}
	}
	snapArch := arch.Or(snap.Arch, arch.X86_64)
	drv, err := s.driver(&VM{Config: Config{VMM: snap.VMM, Arch: snapArch}})
	if err != nil {
		return err
	}
	sn, ok := drv.(vmm.Snapshotter)
	if !ok {
		return stale("%s cannot restore snapshots", snap.VMM)
	}
	ver, err := s.vmmVersion(sn)
	if err != nil {
		return err
	}
	if ver != snap.VMMVersion {
		return stale("it was taken by %s %q, this host has %q", snap.VMM, snap.VMMVersion, ver)
	}
	if snap.VMM == VMMQEMU {
		accel, err := s.qemuAccel(snapArch)
		if err != nil {
			return err
		}
		if accel != snap.Accel {
			return stale("it was taken under %s, QEMU here runs with %s", snap.Accel, accel)
		}
	}
	return nil
}

// checkSnapshotBacking is checkBacking for the overlay disk of snapshot
// snap: a problem is a *StaleError.
func (s *Store) checkSnapshotBacking(snap, img, backing, sha string) error {
	var be *BackingError
	if err := s.checkBacking(img, backing, sha); errors.As(err, &be) {
		return &StaleError{Snapshot: snap, Reason: be.Reason, Hint: be.Hint}
	} else if err != nil {
		return err
	}
	return nil
}

// WarmSnapshotName is the name of image's warm snapshot.
func WarmSnapshotName(image string) string { return image + ".warm" }

// WarmSnapshotFor is the warm snapshot a VM created with o would
// restore, or nil with the reason none applies ("" when the image has no
// warm snapshot).
func (s *Store) WarmSnapshotFor(o CreateOptions) (*snapshot.Manifest, string) {
	if !o.fromImageAlone() {
		return nil, "the VM is not created from an image alone"
	}
	return s.warmFor(o)
}

// fromImageAlone says whether a VM created with o is made from its image
// and nothing else (no rootfs, snapshot, cold boot, mounts or copies), the
// only VMs a warm snapshot can stand in for.
func (o CreateOptions) fromImageAlone() bool {
	return o.Image != "" && o.Rootfs == "" && o.Snapshot == "" && !o.Cold && len(o.Mounts) == 0 && len(o.CopyIns) == 0
}

// warmFor returns the warm snapshot of image that matches what o asks for
// (CPUs, memory, VMM, network; 0 and "" meaning the defaults), or nil
// with the reason it does not apply.
func (s *Store) warmFor(o CreateOptions) (*snapshot.Manifest, string) {
	snap, err := snapshot.New(s.Layout).Get(WarmSnapshotName(o.Image))
	if err != nil {
		if errors.Is(err, snapshot.ErrNotFound) {
			return nil, ""
		}
		return nil, err.Error()
	}
	cpus, mem := o.CPUs, o.MemoryMiB
	if cpus == 0 {
		cpus = DefaultCPUs
	}
	if mem == 0 {
		mem = DefaultMemoryMiB
	}
	snapArch := arch.Or(snap.Arch, arch.X86_64)
	if o.Arch != "" && arch.Or(o.Arch, "") != snapArch {
		return nil, fmt.Sprintf("it is of an %s VM, this VM is %s", snapArch, o.Arch)
	}
	vmmName, err := s.chooseVMM(o.VMM, snapArch)
	if err != nil {
		return nil, err.Error()
	}
	net := o.Net
	if net == "" {
		net = NetUser
		if vmmName == VMMFirecracker {
			net = NetTap
		}
	}
	switch {
	case snap.WarmFor != o.Image:
		return nil, "it is not this image's"
	case o.Kernel != "" && o.Kernel != snap.Kernel:
		return nil, "another kernel was asked for"
	case cpus != snap.CPUs || mem != snap.MemoryMiB:
		return nil, fmt.Sprintf("it has %d CPU(s) and %dM, this VM %d and %dM", snap.CPUs, snap.MemoryMiB, cpus, mem)
	case vmmName != snap.VMM || net != snap.Net:
		return nil, fmt.Sprintf("it runs on %s with %s networking, this VM on %s with %s networking", snap.VMM, snap.Net, vmmName, net)
	case net == NetUser && cmp.Or(o.HostAccess, DefaultHostAccess) != snap.HostAccess:
		return nil, fmt.Sprintf("its host access is %s, this VM's %s", snap.HostAccess, cmp.Or(o.HostAccess, DefaultHostAccess))
	case o.DiskSize != 0 || o.KernelArgs != "" || o.ReadyMarker != "" || o.Jailer || (o.Ready != "" && o.Ready != "auto" && o.Ready != snap.Ready):
		return nil, "this VM asks for its own disk size, kernel arguments, readiness or jailer"
	}
	if err := s.checkRestorable(snap); err != nil {
		return nil, err.Error()
	}
	return snap, ""
}

// restoreLocked brings v up from its snapshot instead of booting; the
// caller holds its lock. Then, over SSH, the clone identity step makes
// the guest its own machine (hostname, MAC, a reseeded RNG, the clock).
func (s *Store) restoreLocked(ctx context.Context, v *VM, o StartOptions) error {
	snap, err := snapshot.New(s.Layout).Get(v.Config.Snapshot)
	if err != nil {
		return fmt.Errorf("starting VM %q: %w", v.Name(), err)
	}
	if err := s.checkRestorable(snap); err != nil {
		return fmt.Errorf("starting VM %q: %w", v.Name(), err)
	}
	m, drv, err := s.machine(ctx, v)
	if err != nil {
		return fmt.Errorf("starting VM %q: %w", v.Name(), err)
	}
	sn, ok := drv.(vmm.Snapshotter)
	if !ok {
		return fmt.Errorf("starting VM %q: %s cannot restore snapshots", v.Name(), drv.Name())
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultReadyTimeout
	}
	if st, err := os.Stat(m.ConsoleLog); err == nil {
		v.State.ConsoleOffset = st.Size()
	}
	v.State.Status, v.State.Reason = StatusStarting, ""
	v.State.StartedAt, v.State.StoppedAt = time.Now().UTC(), time.Time{}
	v.State.Boot, v.State.Path, v.State.Identity = Timings{}, PathRestore, ""
	if v.State.RestoreTried {
		// The disk and the pinned host key go back to the snapshot's (a
		// guest that makes its host key on first use made one already).
		if err := diskcopy.Copy(ctx, v.DiskPath(), snap.DiskPath()); err != nil {
			return fmt.Errorf("starting VM %q: the disk of an unfinished restore must be the snapshot's again: %w", v.Name(), err)
		}
		if err := os.Remove(v.KnownHosts()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := copyIfExists(filepath.Join(snap.Dir(), snapshot.KnownHostsFile), v.KnownHosts()); err != nil {
			return err
		}
	}
	v.State.RestoreTried = true
	if err := v.saveState(); err != nil {
		return err
	}
	t0 := time.Now()
	p, err := sn.Restore(ctx, m, snap.Dir())
	if err != nil {
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
	if v.Config.Ready == ReadySSH && v.sshAddr() != "" {
		res, c, err := s.cloneIdentity(ctx, v, snap, o.Timeout, o.KeepSSH != nil)
		if c != nil {
			*o.KeepSSH = c
		}
		if err != nil {
			_ = v.State.Process().Kill(0)
			s.failStart(v, err)
			return fmt.Errorf("starting VM %q: %w", v.Name(), err)
		}
		v.State.Identity = res
		if err := s.setupAfterReady(ctx, v, o); err != nil {
			_ = v.State.Process().Kill(0)
			s.failStart(v, err)
			return fmt.Errorf("starting VM %q: %w", v.Name(), err)
		}
	} else {
		v.State.Identity = "none: the guest has no SSH, so it keeps the snapshot's hostname, RNG state and clock"
		s.logf("VM %q was restored without the clone identity step: %s", v.Name(), strings.TrimPrefix(v.State.Identity, "none: "))
	}
	v.State.Boot.Ready = time.Since(t0)
	v.State.RestorePending, v.State.RestoreTried = false, false
	v.State.Status = StatusRunning
	return v.saveState()
}

// cloneIdentity runs the guest side of a restore over SSH and returns
// what it reported. On --net tap the guest comes back with the address
// of the VM the snapshot was taken of: its tap is isolated (see
// netsetup.Isolate) with that VM's host address while the guest is
// reached at the old address and moved to its own, then returned, and
// the guest must answer at its own address before the restore counts.
func (s *Store) cloneIdentity(ctx context.Context, v *VM, snap *snapshot.Manifest, timeout time.Duration, keep bool) (string, *ssh.Client, error) {
	kp, err := sshkey.Ensure(s.Layout.SSHDir())
	if err != nil {
		return "", nil, err
	}
	target := &guest.SSH{Addr: v.sshAddr(), KeyPath: kp.PrivatePath, KnownHosts: v.KnownHosts(), Name: v.Name()}
	seed := make([]byte, 64)
	_, _ = rand.Read(seed)
	params := guestinit.RestoreParams{Hostname: cmp.Or(v.Config.Hostname, v.Name()), Seed: seed}
	switch v.Config.Net {
	case NetUser:
		params.MAC = userMAC(v.Name())
	case NetTap:
		l, err := s.lease(v.Name())
		if err != nil {
			return "", nil, err
		}
		params.MAC = l.MAC
		if snap.TapGuest == "" || snap.TapHost == "" {
			return "", nil, fmt.Errorf("snapshot %q has no record of its guest's tap address (hint: take it again)", snap.Name)
		}
		if snap.TapGuest != l.GuestAddr.String() {
			old, err := netip.ParsePrefix(snap.TapGuest)
			if err != nil {
				return "", nil, fmt.Errorf("snapshot %q: tap address: %w", snap.Name, err)
			}
			host, err := netip.ParsePrefix(snap.TapHost)
			if err != nil {
				return "", nil, fmt.Errorf("snapshot %q: tap address: %w", snap.Name, err)
			}
			cfg, err := s.netConfig()
			if err != nil {
				return "", nil, err
			}
			iso, err := netsetup.Isolate(ctx, cfg, v.Name(), host)
			if err != nil {
				return "", nil, err
			}
			defer func() {
				if iso != nil {
					_ = iso.Close(context.WithoutCancel(ctx))
				}
			}()
			target.Addr = net.JoinHostPort(old.Addr().String(), "22")
			target.Dial = iso.DialContext
			params.Net = &guestinit.NetChange{Old: snap.TapGuest, New: l.GuestAddr.String(), Gateway: l.HostAddr.Addr().String()}
			res, _, err := s.runIdentity(ctx, v, target, params, timeout, false)
			if err != nil {
				return "", nil, err
			}
			err = iso.Close(ctx)
			iso = nil
			if err != nil {
				return "", nil, err
			}
			if err := waitTCP(ctx, v.sshAddr(), timeout); err != nil {
				return "", nil, fmt.Errorf("the restored guest moved to %s but does not answer there: %w", l.GuestAddr.Addr(), err)
			}
			return res, nil, nil
		}
		params.Net = &guestinit.NetChange{Old: snap.TapGuest, New: snap.TapGuest}
	}
	return s.runIdentity(ctx, v, target, params, timeout, keep)
}

// runIdentity runs guestinit's restore command in the guest at target;
// with keep, it returns the connection open on success.
func (s *Store) runIdentity(ctx context.Context, v *VM, target *guest.SSH, params guestinit.RestoreParams, timeout time.Duration, keep bool) (_ string, _ *ssh.Client, err error) {
	c, err := target.Connect(ctx, timeout)
	if err != nil {
		return "", nil, fmt.Errorf("reaching the restored guest over SSH: %w", err)
	}
	defer func() {
		if !keep || err != nil {
			_ = c.Close()
		}
	}()
	var out, errb bytes.Buffer
	params.Now = time.Now() // the clock is the command's first step
	code, err := guest.Run(ctx, c, guestinit.RestoreCommand(params), nil, &out, &errb)
	if err != nil {
		return "", nil, fmt.Errorf("clone identity step: %w", err)
	}
	res, perr := guestinit.ParseRestoreResult(out.String())
	if code != 0 || perr != nil {
		return "", nil, fmt.Errorf("clone identity step failed (exit %d): %s%s", code, strings.TrimSpace(errb.String()+" "+out.String()), errText(perr))
	}
	for _, w := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if w != "" {
			s.logf("VM %q: %s", v.Name(), w)
		}
	}
	summary := fmt.Sprintf("reseed=%s clock=%s hostname=%s mac=%s net=%s", res.Reseed, res.Clock, res.Hostname, res.MAC, res.Net)
	if !keep {
		return summary, nil, nil
	}
	return summary, c, nil
}

// waitTCP waits until something accepts TCP connections at addr.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// WarmOptions tune WarmImage.
type WarmOptions struct {
	CPUs      int    // 0 means DefaultCPUs
	MemoryMiB int    // 0 means DefaultMemoryMiB
	VMM       string // as CreateOptions.VMM
	Net       string // as CreateOptions.Net
	// HostAccess is as CreateOptions.HostAccess.
	HostAccess string
	Timeout    time.Duration
}

// WarmImage boots image once in a throwaway VM, waits until it is ready,
// and saves it as the image's warm snapshot (replacing an older one).
// From then on, VMs created from the image with the same CPUs, memory,
// VMM and network restore it instead of booting.
func (s *Store) WarmImage(ctx context.Context, img string, o WarmOptions) (*snapshot.Manifest, error) {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tmp := fmt.Sprintf("%.40s-warming-%x", img, b)
	if _, err := s.Create(ctx, CreateOptions{Name: tmp, Image: img, Cold: true, CPUs: o.CPUs, MemoryMiB: o.MemoryMiB, VMM: o.VMM, Net: o.Net, HostAccess: o.HostAccess}); err != nil {
		return nil, err
	}
	defer func() { _ = s.Remove(context.WithoutCancel(ctx), tmp, true) }()
	if _, err := s.Start(ctx, tmp, StartOptions{Timeout: o.Timeout}); err != nil {
		return nil, err
	}
	name := WarmSnapshotName(img)
	snaps := snapshot.New(s.Layout)
	if err := snaps.Remove(ctx, name, true, nil); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		return nil, err
	}
	return s.Snapshot(ctx, tmp, name, SnapshotOptions{WarmFor: img})
}

// vmmVersion is sn's version, asked once per store.
func (s *Store) vmmVersion(sn vmm.Snapshotter) (string, error) {
	s.versionsMu.Lock()
	defer s.versionsMu.Unlock()
	if v, ok := s.versions[versionKey(sn)]; ok {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := sn.Version(ctx)
	if err != nil {
		return "", err
	}
	if s.versions == nil {
		s.versions = map[string]string{}
	}
	s.versions[versionKey(sn)] = v
	return v, nil
}

// versionKey names a driver's version in the cache: QEMU runs another
// binary for each guest architecture.
func versionKey(sn vmm.Snapshotter) string {
	if q, ok := sn.(*qemu.Driver); ok {
		return sn.Name() + "/" + arch.Or(q.Arch, arch.X86_64)
	}
	return sn.Name()
}
