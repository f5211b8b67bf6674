package vm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/thaloco/banger/internal/ext4"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/stagedir"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/firecracker"
)

// CreateOptions describe a new VM. Either Image, or Kernel and Rootfs.
type CreateOptions struct {
	Name   string
	Image  string // image name; its kernel unless Kernel is set
	Kernel string // installed kernel name
	Rootfs string // ext4 file to copy instead of an image's rootfs
	// Arch is the guest architecture, any spelling package arch accepts;
	// "" means the image's, else the kernel's.
	Arch string

	CPUs      int    // 0 means 1
	MemoryMiB int    // 0 means 512
	DiskSize  int64  // bytes; 0 means the size of the source rootfs
	VMM       string // "qemu", "firecracker", "auto" or "" ($BANGER_VMM, else auto)
	Jailer    bool   // Firecracker only: run it through its jailer
	Net       string // "user", "tap", "none"; "" means user for QEMU, tap for Firecracker
	Forwards  []Forward
	// HostAccess is HostAccessNone or HostAccessLoopback (user networking
	// only); "" means DefaultHostAccess.
	HostAccess string
	KernelArgs string
	// Ready is "ssh", "console" or "auto"/"" (ssh when the disk holds an
	// SSH server and the VM has a network, else console).
	Ready       string
	ReadyMarker string
	// Snapshot makes the VM's first start restore this snapshot (its disk
	// is a copy of the snapshot's; CPUs, memory and network are its).
	Snapshot string
	// Cold never uses the image's warm snapshot.
	Cold bool

	// Setup applied over SSH (see setup.go): shared folders (QEMU),
	// read-only copies of host folders, an init script run once (a file
	// path, copied at creation), authorized keys for root, a hostname.
	Mounts     []Mount
	CopyIns    []CopyIn
	InitScript string
	SSHKeys    []string
	Hostname   string
}

// Defaults.
const (
	DefaultCPUs      = 1
	DefaultMemoryMiB = 512
)

// Create makes a new VM from an image (or a kernel and rootfs): its own
// directory with a writable disk, a qcow2 overlay of the image's root
// filesystem or a copy of it (see makeDisk). It does not start it. The
// VM appears under its name only complete: an error or ctx ending
// half-way leaves nothing behind.
func (s *Store) Create(ctx context.Context, o CreateOptions) (*VM, error) {
	if err := paths.ValidateName("vm", o.Name); err != nil {
		return nil, err
	}
	// What the VM is made from is held (shared) until the VM exists and
	// counts as its user, so "image rm", "kernel rm" and "snapshot rm"
	// cannot remove it half-way through.
	var held sourceLocks
	defer held.release()
	if err := held.hold(ctx, s, o.Image, o.Kernel, o.Snapshot); err != nil {
		return nil, err
	}
	cfg, src, err := s.plan(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
	}
	if cfg.Kernel != o.Kernel || cfg.Snapshot != o.Snapshot || cfg.Disk.Backing != "" {
		// The image's kernel, or its warm snapshot, or the image a
		// snapshot's overlay disk reads from: held now, so check they are
		// still there.
		backingImage := ""
		if cfg.Disk.Backing != "" {
			backingImage = cfg.Image
		}
		if err := held.hold(ctx, s, backingImage, cfg.Kernel, cfg.Snapshot); err != nil {
			return nil, err
		}
		if _, err := kernelstore.New(s.Layout.KernelsDir).Get(cfg.Kernel); err != nil {
			return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
		}
		if cfg.Snapshot != "" {
			if _, err := snapshot.New(s.Layout).Get(cfg.Snapshot); err != nil {
				return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
			}
		}
		if cfg.Disk.Backing != "" {
			if err := s.checkSnapshotBacking(cfg.Snapshot, cfg.Image, cfg.Disk.Backing, cfg.Disk.BackingSHA256); err != nil {
				return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
			}
		}
	}
	l, err := s.lock(ctx, o.Name)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	dir := s.Layout.VM(o.Name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("VM %q already exists (hint: choose another name, or remove it first with \"banger vm rm %s\")", o.Name, o.Name)
	}
	if err := s.checkSockets(&VM{Config: cfg, Dir: dir}); err != nil {
		return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
	}
	if err := os.MkdirAll(s.Layout.VMsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
	}
	s.cleanLeftovers(o.Name)
	tmp, err := stagedir.Create(s.Layout.VMsDir(), o.Name)
	if err == nil {
		err = os.Chmod(tmp, 0o700) // its disk holds the guest's data
	}
	if err != nil {
		return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
	}
	v := &VM{Config: cfg, Dir: tmp, State: State{Status: StatusCreated}}
	if err := s.populate(ctx, v, src, o); err != nil {
		_ = stagedir.RemoveAll(tmp)
		return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
	}
	if err := stagedir.Publish(s.Layout.VMsDir(), tmp, o.Name, false); err != nil {
		_ = stagedir.RemoveAll(tmp)
		return nil, fmt.Errorf("creating VM %q: %w", o.Name, err)
	}
	v.Dir = dir
	return v, nil
}

// checkSockets refuses a VM whose driver's unix socket paths (in v.Dir,
// or in its jail) would be too long: start would fail on them.
func (s *Store) checkSockets(v *VM) error {
	d, err := s.driver(v)
	if err != nil {
		return err
	}
	sl, ok := d.(vmm.SocketLister)
	if !ok {
		return nil
	}
	for _, sock := range sl.Sockets(vmm.Machine{Name: v.Name(), Dir: v.Dir}) {
		if err := vmm.CheckSocketPath(sock.What, sock.Path); err != nil {
			return err
		}
	}
	return nil
}

// populate writes v's disk, config and state into its temp directory.
func (s *Store) populate(ctx context.Context, v *VM, src source, o CreateOptions) error {
	// Looking for an SSH server (debugfs reading the source) runs while
	// the disk is made.
	type found struct {
		ok  bool
		err error
	}
	var sshd chan found
	if v.Config.Snapshot == "" && (o.Ready == "" || o.Ready == "auto") {
		v.Config.Ready = ReadyConsole
		if v.Config.Net != NetNone && v.Config.ReadyMarker == "" {
			sshd = make(chan found, 1)
			go func() {
				ok, err := s.sshServerIn(ctx, src)
				sshd <- found{ok, err}
			}()
		}
	}
	err := s.makeDisk(ctx, v, src)
	if sshd != nil {
		f := <-sshd
		if err == nil && f.err != nil {
			err = f.err
		}
		if f.ok {
			v.Config.Ready = ReadySSH
		}
	}
	if err != nil {
		return diskErr(err, s.Layout.VMsDir())
	}
	if v.Config.Snapshot != "" {
		v.State.RestorePending = true
		if err := copyIfExists(filepath.Join(filepath.Dir(src.path), snapshot.KnownHostsFile), v.KnownHosts()); err != nil {
			return err
		}
	}
	if v.Config.hasSetup() && v.Config.Ready != ReadySSH {
		why := "it has no network"
		if v.Config.Net != NetNone {
			why = "its disk has no SSH server (sshd or dropbear)"
			if v.Config.ReadyMarker != "" {
				why = "it waits for a console marker"
			}
		}
		return &NoSSHSetupError{What: v.Config.setupFlags(), Why: why}
	}
	if err := populateSetup(ctx, v, o); err != nil {
		return diskErr(err, s.Layout.VMsDir())
	}
	if err := writeJSON(filepath.Join(v.Dir, configFile), v.Config); err != nil {
		return diskErr(err, s.Layout.VMsDir())
	}
	return diskErr(writeJSON(filepath.Join(v.Dir, stateFile), v.State), s.Layout.VMsDir())
}

// diskErr adds a hint to out-of-space errors.
func diskErr(err error, dir string) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w (hint: free space on the filesystem holding %s)", err, dir)
	}
	return err
}

// plan checks o and turns it into a Config plus what the disk is made
// from.
func (s *Store) plan(ctx context.Context, o CreateOptions) (Config, source, error) {
	cfg := Config{
		Name: o.Name, Image: o.Image, Kernel: o.Kernel, CPUs: o.CPUs, MemoryMiB: o.MemoryMiB,
		DiskSize: o.DiskSize, Forwards: o.Forwards, HostAccess: o.HostAccess, KernelArgs: strings.TrimSpace(o.KernelArgs),
		Ready: o.Ready, ReadyMarker: o.ReadyMarker, CreatedAt: time.Now().UTC(),
	}
	var src source
	var img *image.Manifest
	if o.fromImageAlone() {
		if snap, why := s.warmFor(o); snap != nil {
			o.Snapshot = snap.Name
			o.Image = ""
			o.Kernel = ""
			o.Net, o.VMM = "", ""
			o.CPUs, o.MemoryMiB = 0, 0
		} else if why != "" {
			s.logf("not using the warm snapshot of image %q: %s", o.Image, why)
		}
	}
	if o.Snapshot != "" {
		disk, err := s.planSnapshot(&cfg, o)
		if err != nil {
			return cfg, src, err
		}
		if len(o.Mounts) > 0 || len(o.CopyIns) > 0 {
			return cfg, src, &option.Error{
				Problem: fmt.Sprintf("a VM restored from snapshot %q cannot get {mount} or {copy-in}: a restore brings back the snapshot's devices", o.Snapshot),
				Hint:    "create it from the image with {cold}",
			}
		}
		if err := planSetup(&cfg, o); err != nil {
			return cfg, src, err
		}
		if err := checkNetForwards(&cfg); err != nil {
			return cfg, src, err
		}
		return cfg, source{path: disk, snapshot: true}, ctx.Err()
	}
	switch {
	case o.Image != "" && o.Rootfs != "":
		return cfg, src, &option.Error{Problem: "give an image or {rootfs}, not both"}
	case o.Image != "":
		m, err := image.New(s.Layout.ImagesDir()).Get(o.Image)
		if err != nil {
			return cfg, src, err
		}
		src, img = source{path: m.RootfsPath(), imageSHA256: m.RootfsSHA256}, m
		if cfg.Kernel == "" {
			cfg.Kernel = m.KernelRef
		}
	case o.Rootfs != "":
		if o.Kernel == "" {
			return cfg, src, &option.Error{Option: "rootfs", Problem: "needs {kernel}", Hint: `"banger kernel list" shows the installed kernels`}
		}
		abs, err := filepath.Abs(o.Rootfs)
		if err != nil {
			return cfg, src, err
		}
		if _, err := ext4.Check(abs); err != nil {
			return cfg, src, err
		}
		src.path, cfg.Rootfs = abs, abs
	default:
		return cfg, src, &option.Error{Problem: "no image given", Hint: `name an image from "banger image list", or pass {kernel} and {rootfs}`}
	}
	k, err := kernelstore.New(s.Layout.KernelsDir).Get(cfg.Kernel)
	if err != nil {
		return cfg, src, err
	}
	if err := planArch(&cfg, o.Arch, img, k); err != nil {
		return cfg, src, err
	}
	if err := s.checkResources(&cfg, src.path); err != nil {
		return cfg, src, err
	}
	if cfg.VMM, err = s.chooseVMM(o.VMM, cfg.Arch); err != nil {
		return cfg, src, err
	}
	if cfg.Jailer = o.Jailer; cfg.Jailer && cfg.VMM != VMMFirecracker {
		return cfg, src, &option.Error{Option: "jailer", Problem: fmt.Sprintf("needs Firecracker, but VM %q uses %s", cfg.Name, cfg.VMM), Hint: "add {vmm} firecracker"}
	}
	if cfg.Jailer && !firecracker.ValidJailerID(cfg.Name) {
		return cfg, src, fmt.Errorf("VM name %q cannot be a jailer id: the jailer accepts only letters, digits and '-' (hint: rename the VM)", cfg.Name)
	}
	if err := checkNet(&cfg, o.Net); err != nil {
		return cfg, src, err
	}
	if err := planSetup(&cfg, o); err != nil {
		return cfg, src, err
	}
	switch cfg.Ready {
	case "", "auto", ReadyConsole:
	case ReadySSH:
		if cfg.Net == NetNone {
			return cfg, src, &option.Error{Option: "ready", Value: ReadySSH, Problem: "needs a network", Hint: "{net} user or {net} tap"}
		}
	default:
		return cfg, src, fmt.Errorf("unknown readiness %q (hint: use ssh, console or auto)", cfg.Ready)
	}
	if cfg.ReadyMarker != "" {
		cfg.Ready = ReadyConsole
	}
	return cfg, src, ctx.Err()
}

// checkResources fills in and checks CPUs, memory and disk size.
func (s *Store) checkResources(cfg *Config, src string) error {
	if cfg.CPUs == 0 {
		cfg.CPUs = DefaultCPUs
	}
	if cfg.CPUs < 1 || cfg.CPUs > 4*runtime.NumCPU() {
		return &option.Error{Option: "cpus", Value: strconv.Itoa(cfg.CPUs), Problem: "is out of range", Hint: fmt.Sprintf("use 1 to %d", 4*runtime.NumCPU())}
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = DefaultMemoryMiB
	}
	if cfg.MemoryMiB < MinMemoryMiB {
		return &option.Error{Option: "memory", Value: fmt.Sprintf("%dM", cfg.MemoryMiB),
			Problem: fmt.Sprintf("is too little: a VM needs at least %dM", MinMemoryMiB), Hint: fmt.Sprintf("use {memory} %dM or more", MinMemoryMiB)}
	}
	if total := hostMemoryMiB(); total > 0 && cfg.MemoryMiB > total {
		return &option.Error{Option: "memory", Value: fmt.Sprintf("%dM", cfg.MemoryMiB), Problem: fmt.Sprintf("is more than this host's %dM of RAM", total)}
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}
	if cfg.DiskSize != 0 && cfg.DiskSize < st.Size() {
		return &option.Error{Option: "disk-size", Value: humanBytes(cfg.DiskSize),
			Problem: fmt.Sprintf("is smaller than the root filesystem (%s)", humanBytes(st.Size())), Hint: fmt.Sprintf("use {disk-size} %s or more", humanBytes(st.Size()))}
	}
	return nil
}

// checkNet fills in and checks the network mode and port forwards.
func checkNet(cfg *Config, mode string) error {
	if mode == "" {
		mode = NetUser
		if cfg.VMM == VMMFirecracker {
			mode = NetTap
		}
	}
	switch mode {
	case NetUser:
		if cfg.VMM == VMMFirecracker {
			return &option.Error{Problem: "firecracker has no user-mode networking", Hint: "use {net} tap, or {vmm} qemu"}
		}
	case NetTap, NetNone:
		if len(cfg.Forwards) > 0 {
			return &option.Error{Option: "publish", Problem: fmt.Sprintf("forwards ports only with {net} user (with {net} %s, reach the guest's address directly)", mode)}
		}
	default:
		return fmt.Errorf("unknown network mode %q (hint: use user, tap or none)", mode)
	}
	cfg.Net = mode
	if err := checkHostAccess(cfg); err != nil {
		return err
	}
	return checkNetForwards(cfg)
}

// checkHostAccess fills in and checks the host access of user networking.
func checkHostAccess(cfg *Config) error {
	switch {
	case cfg.Net != NetUser && cfg.HostAccess != "":
		return &option.Error{Option: "host-access", Problem: fmt.Sprintf("applies only to {net} user (with {net} %s, the host's firewall decides what the guest reaches)", cfg.Net)}
	case cfg.Net != NetUser:
		return nil
	case cfg.HostAccess == "":
		cfg.HostAccess = DefaultHostAccess
	case cfg.HostAccess != HostAccessNone && cfg.HostAccess != HostAccessLoopback:
		return fmt.Errorf("unknown host access %q (hint: use none or loopback)", cfg.HostAccess)
	}
	return nil
}

// checkNetForwards checks each forward and refuses two that bind the
// same host port and protocol on overlapping addresses (0.0.0.0 overlaps
// every address).
func checkNetForwards(cfg *Config) error {
	for i, f := range cfg.Forwards {
		if err := f.check(); err != nil {
			return err
		}
		for _, g := range cfg.Forwards[:i] {
			if f.overlaps(g) {
				return fmt.Errorf("port forwards %s and %s both bind host port %d/%s", g, f, f.HostPort, f.Proto)
			}
		}
	}
	return nil
}

// sourceLocks are the shared locks a create holds on what it copies from.
type sourceLocks struct {
	locks []*lockfile.Lock
	names map[string]bool // "image/golden", "kernel/generic-6.12", …
}

// hold takes the shared locks of the named image, kernel and snapshot
// ("" for none) that it does not hold yet.
func (h *sourceLocks) hold(ctx context.Context, s *Store, img, kernel, snap string) error {
	if h.names == nil {
		h.names = map[string]bool{}
	}
	for _, w := range []struct {
		kind, name string
		rlock      func(context.Context, string) (*lockfile.Lock, error)
	}{
		{"image", img, image.New(s.Layout.ImagesDir()).RLock},
		{"kernel", kernel, kernelstore.New(s.Layout.KernelsDir).RLock},
		{"snapshot", snap, snapshot.New(s.Layout).RLock},
	} {
		key := w.kind + "/" + w.name
		if w.name == "" || h.names[key] || paths.ValidateName(w.kind, w.name) != nil {
			continue // a bad name is refused by plan, with its own message
		}
		l, err := w.rlock(ctx, w.name)
		if err != nil {
			return err
		}
		h.locks = append(h.locks, l)
		h.names[key] = true
	}
	return nil
}

func (h *sourceLocks) release() {
	for _, l := range h.locks {
		_ = l.Unlock()
	}
}

// notExist reports whether nothing is at path. A path that cannot be
// examined (a dead FUSE mount answers ENOTCONN) counts as existing.
func notExist(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist)
}
