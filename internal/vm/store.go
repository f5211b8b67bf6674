package vm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/qcow2"
	"github.com/thaloco/banger/internal/snapshot"
)

// ErrNotFound is wrapped by errors for VMs that do not exist.
var ErrNotFound = errors.New("VM not found")

// Store is the set of VMs under one state directory.
type Store struct {
	Layout paths.Layout
	opts   Options

	// versions caches each VMM's version for this store's life (one
	// banger command): restoring checks it more than once.
	versionsMu sync.Mutex
	versions   map[string]string
	// warnTCG prints the TCG fallback warning once per store, warnCross
	// the note that guests of another architecture are emulated.
	warnTCG, warnCross sync.Once
}

// Options change how a Store reaches its environment and the user.
type Options struct {
	// Getenv reads BANGER_VMM, BANGER_QEMU_ACCEL, the jailer's ids and the
	// network settings; nil means no environment.
	Getenv func(string) string
	// Logf receives warnings and notes for the user (the TCG fallback, tap
	// network notes); nil discards them.
	Logf func(format string, args ...any)
	// ConsoleRelay is the command that runs the console relay of
	// Firecracker VMs (see firecracker.Driver.ConsoleRelay); nil leaves
	// their consoles readable in the log only.
	ConsoleRelay []string
}

// New returns the VM store of layout, with no environment and no notes.
func New(layout paths.Layout) *Store { return &Store{Layout: layout} }

// NewWithOptions is New with opts.
func NewWithOptions(layout paths.Layout, opts Options) *Store {
	return &Store{Layout: layout, opts: opts}
}

func (s *Store) getenv(k string) string {
	if s.opts.Getenv == nil {
		return ""
	}
	return s.opts.Getenv(k)
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func (s *Store) lockPath(name string) string {
	return filepath.Join(s.Layout.LocksDir(), "vm-"+name+".lock")
}

// lock takes the VM's lock, waiting for other banger commands working on
// it.
func (s *Store) lock(ctx context.Context, name string) (*lockfile.Lock, error) {
	l, err := lockfile.Acquire(ctx, s.lockPath(name), func() {
		s.logf("waiting for another banger command working on VM %q", name)
	})
	if err != nil {
		return nil, fmt.Errorf("locking VM %q: %w", name, err)
	}
	return l, nil
}

func notFound(name string) error {
	return fmt.Errorf("VM %q not found (hint: run \"banger vm list\", or create it with \"banger vm create\"): %w", name, ErrNotFound)
}

// open reads the VM called name without reconciling it.
func (s *Store) open(name string) (*VM, error) {
	if err := paths.ValidateName("vm", name); err != nil {
		return nil, err
	}
	dir := s.Layout.VM(name)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, notFound(name)
	}
	v, err := load(dir)
	if err != nil {
		return nil, &BrokenError{Name: name, Reason: err.Error()}
	}
	return v, nil
}

// BrokenError is a VM directory whose config or state cannot be read.
type BrokenError struct{ Name, Reason string }

func (e *BrokenError) Error() string {
	return fmt.Sprintf("VM %q is broken: %s", e.Name, e.Reason)
}

// Get returns the VM called name with its status reconciled with the real
// VMM process.
func (s *Store) Get(name string) (*VM, error) {
	v, err := s.open(name)
	if err != nil {
		return nil, err
	}
	s.reconcile(v)
	return v, nil
}

// Listing is one VM directory: a good VM, or a broken one with the reason.
type Listing struct {
	Name   string
	VM     *VM
	Broken string
}

// List returns every VM, sorted by name, each reconciled. A broken VM
// directory is listed with the reason and never hides the others.
func (s *Store) List() ([]Listing, error) {
	entries, err := os.ReadDir(s.Layout.VMsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing VMs: %w", err)
	}
	var out []Listing
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") {
			s.sweep(name)
			continue
		}
		v, err := load(filepath.Join(s.Layout.VMsDir(), name))
		if err != nil {
			out = append(out, Listing{Name: name, Broken: err.Error()})
			continue
		}
		s.reconcile(v)
		out = append(out, Listing{Name: name, VM: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// sweep removes entry, a directory a killed create or removal left (see
// leftoverName), unless a command holds its VM's lock.
func (s *Store) sweep(entry string) {
	name, ok := leftoverName(entry)
	if !ok || paths.ValidateName("vm", name) != nil {
		return
	}
	l, err := lockfile.TryLock(s.lockPath(name))
	if err != nil {
		return
	}
	defer l.Unlock()
	s.cleanLeftovers(name)
}

// ImageUsers names the VMs created from image, sorted.
func (s *Store) ImageUsers(image string) ([]string, error) {
	return s.usersWhere(func(v *VM) bool { return v.Config.Image == image })
}

// KernelUsers names the VMs that boot kernel, sorted.
func (s *Store) KernelUsers(kernel string) ([]string, error) {
	return s.usersWhere(func(v *VM) bool { return v.Config.Kernel == kernel })
}

// SnapshotUsers names the VMs whose next start restores snapshot, sorted.
func (s *Store) SnapshotUsers(snapshot string) ([]string, error) {
	return s.usersWhere(func(v *VM) bool { return v.Config.Snapshot == snapshot && v.State.RestorePending })
}

// OverlayUsers names what has a disk overlaying the rootfs of image img:
// "VM web", then "snapshot web-ready", each kind sorted. The image's own warm snapshot,
// which goes with the image, is left out. A VM or snapshot whose record
// cannot be read counts when its disk's qcow2 header names the rootfs.
func (s *Store) OverlayUsers(img string) ([]string, error) {
	rootfs, err := filepath.Abs(image.New(s.Layout.ImagesDir()).RootfsPath(img))
	if err != nil {
		return nil, err
	}
	overlays := func(disk string) bool {
		h, err := qcow2.ReadHeader(disk)
		return err == nil && h.BackingFile == rootfs
	}
	var users []string
	vms, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, l := range vms {
		if l.VM != nil && l.VM.Config.Disk.Format == DiskQcow2 && l.VM.Config.Disk.Backing == rootfs ||
			l.VM == nil && overlays(filepath.Join(s.Layout.VM(l.Name), overlayFile)) {
			users = append(users, "VM "+l.Name)
		}
	}
	snaps, err := snapshot.New(s.Layout).List()
	if err != nil {
		return nil, err
	}
	for _, l := range snaps {
		m := l.Manifest
		if m != nil && m.DiskFormat == snapshot.DiskQcow2 && m.DiskBacking == rootfs && m.WarmFor != img ||
			m == nil && overlays(filepath.Join(snapshot.New(s.Layout).Dir(), l.Name, snapshot.OverlayDiskFile)) {
			users = append(users, "snapshot "+l.Name)
		}
	}
	return users, nil
}

// usersWhere names the VMs for which uses holds, sorted.
func (s *Store) usersWhere(uses func(*VM) bool) ([]string, error) {
	ls, err := s.List()
	if err != nil {
		return nil, err
	}
	var users []string
	for _, l := range ls {
		if l.VM != nil && uses(l.VM) {
			users = append(users, l.Name)
		}
	}
	return users, nil
}
