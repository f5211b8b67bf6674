// Package snapshot keeps saved VM snapshots: a paused guest's memory and
// device state (files written by the VMM driver), a point-in-time copy of
// its disk taken while it was paused, the SSH host key banger had pinned
// for it, and a manifest saying what it needs to be restored: the same
// kernel (by sha256), VMM and VMM version, CPUs, memory and network mode.
//
// Each snapshot is a private (0700) directory <state>/snapshots/<name>/,
// assembled beside its final place and renamed into it like kernels and
// images, so a snapshot is either complete or absent.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
)

// Files in a snapshot directory besides the driver's own.
const (
	ManifestFile = "manifest.json"
	DiskFile     = "disk.ext4" // a raw disk
	// OverlayDiskFile is the disk of a snapshot whose source VM's disk
	// was a qcow2 overlay: a copy of the overlay, over the same backing
	// file.
	OverlayDiskFile = "disk.qcow2"
	KnownHostsFile  = "known_hosts"
)

// DiskQcow2 is the DiskFormat of an overlay disk.
const DiskQcow2 = "qcow2"

// ErrNotFound is wrapped by errors for snapshots that do not exist.
var ErrNotFound = errors.New("snapshot not found")

// ErrExists is wrapped when a snapshot name is taken.
var ErrExists = errors.New("snapshot exists")

// Manifest describes a snapshot.
type Manifest struct {
	Name     string `json:"name"`
	SourceVM string `json:"source_vm"`
	// Image is the image the source VM was created from ("" for a VM made
	// from --rootfs), and ImageSHA256 its rootfs_sha256 then.
	Image        string `json:"image,omitempty"`
	ImageSHA256  string `json:"image_sha256,omitempty"`
	Kernel       string `json:"kernel"`
	KernelSHA256 string `json:"kernel_sha256"` // of its vmlinux
	VMM          string `json:"vmm"`
	VMMVersion   string `json:"vmm_version"`
	// Arch is the guest's architecture (package arch); "" in snapshots
	// taken before banger ran arm64 guests means x86_64.
	Arch      string `json:"arch,omitempty"`
	Accel     string `json:"accel"` // kvm or tcg: the CPU model differs
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	Net       string `json:"net"`
	// HostAccess is the source's host access on --net user ("none" or
	// "loopback"). Reading a --net user snapshot taken before it existed
	// gives "loopback", the full access its source had.
	HostAccess string `json:"host_access,omitempty"`
	// TapGuest and TapHost are the source's guest and host addresses
	// (CIDR) on --net tap: a clone comes back with them and moves to its
	// own.
	TapGuest   string `json:"tap_guest,omitempty"`
	TapHost    string `json:"tap_host,omitempty"`
	KernelArgs string `json:"kernel_args,omitempty"`
	// Ready and ReadyMarker are the source VM's readiness settings; a
	// clone's identity step runs over SSH when Ready is "ssh".
	Ready       string `json:"ready"`
	ReadyMarker string `json:"ready_marker,omitempty"`
	// DiskSize is the size of the snapshot's disk file.
	DiskSize int64 `json:"disk_size"`
	// DiskFormat is "qcow2" when the disk is an overlay of the image's
	// rootfs DiskBacking (an absolute path), which had the rootfs_sha256
	// DiskBackingSHA256 when the overlay was made, and shows the guest
	// DiskVirtualSize bytes; "" for a raw disk.
	DiskFormat        string `json:"disk_format,omitempty"`
	DiskBacking       string `json:"disk_backing,omitempty"`
	DiskBackingSHA256 string `json:"disk_backing_sha256,omitempty"`
	DiskVirtualSize   int64  `json:"disk_virtual_size,omitempty"`
	// StateFiles are the driver's files, with their sizes: Size is the
	// apparent size, DiskUsage what the file really takes (holes skipped).
	StateFiles []File `json:"state_files"`
	// WarmFor names the image this snapshot is the warm start of.
	WarmFor   string    `json:"warm_for,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// SaveTime is how long the VM was paused to take the snapshot.
	SaveTime time.Duration `json:"save_ns"`

	dir string
}

// File is one file of a snapshot.
type File struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	DiskUsage int64  `json:"disk_usage"`
}

// Dir is the snapshot's directory.
func (m *Manifest) Dir() string { return m.dir }

// DiskFileName is the name of the snapshot's disk file.
func (m *Manifest) DiskFileName() string {
	if m.DiskFormat == DiskQcow2 {
		return OverlayDiskFile
	}
	return DiskFile
}

// DiskPath is the snapshot's copy of the source VM's disk.
func (m *Manifest) DiskPath() string { return filepath.Join(m.dir, m.DiskFileName()) }

// DiskKind says what the snapshot's disk is: "qcow2 overlay of image
// NAME" or "raw".
func (m *Manifest) DiskKind() string {
	if m.DiskFormat == DiskQcow2 {
		return "qcow2 overlay of image " + m.Image
	}
	return "raw"
}

// GuestDiskSize is the size of the disk the guest sees.
func (m *Manifest) GuestDiskSize() int64 {
	if m.DiskFormat == DiskQcow2 {
		return m.DiskVirtualSize
	}
	return m.DiskSize
}

// KnownHosts is the source VM's pinned SSH host key file ("" content if
// banger never connected to it).
func (m *Manifest) KnownHosts() string { return filepath.Join(m.dir, KnownHostsFile) }

// DiskUsage is what the whole snapshot takes on disk.
func (m *Manifest) DiskUsage() int64 {
	var n int64
	for _, f := range m.StateFiles {
		n += f.DiskUsage
	}
	return n + Usage(m.DiskPath())
}

// Usage is the disk space path's blocks take, 0 if it cannot be read.
func Usage(path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Blocks * 512
}

// Store is the set of snapshots in one directory.
type Store struct{ dir string }

// New returns the snapshot store of layout.
func New(layout paths.Layout) *Store { return &Store{dir: layout.SnapshotsDir()} }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) lockPath(name string) string { return filepath.Join(s.dir, ".locks", name+".lock") }

// Lock takes the lock of the snapshot called name: snapshots of one name
// are made and removed one at a time.
func (s *Store) Lock(ctx context.Context, name string) (*lockfile.Lock, error) {
	if err := paths.ValidateName("snapshot", name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	l, err := lockfile.Acquire(ctx, s.lockPath(name), nil)
	if err != nil {
		return nil, fmt.Errorf("locking snapshot %q: %w", name, err)
	}
	return l, nil
}

func notFound(name string) error {
	return fmt.Errorf("snapshot %q not found (hint: run \"banger snapshot list\", or take one with \"banger vm snapshot VM %s\"): %w", name, name, ErrNotFound)
}

// Get reads the snapshot called name and checks its files are there with
// the sizes recorded (a truncated memory file is refused here, not by the
// VMM half-way through a restore).
func (s *Store) Get(name string) (*Manifest, error) {
	if err := paths.ValidateName("snapshot", name); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, name)
	broken := func(format string, a ...any) error {
		return &stagedir.BrokenError{Kind: "snapshot", Name: name, Reason: fmt.Sprintf(format, a...),
			Hint: fmt.Sprintf("remove it with \"banger snapshot rm %s\" and take it again", name)}
	}
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr == nil {
			return nil, broken("%s is missing", ManifestFile)
		}
		return nil, notFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading snapshot %q: %w", name, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, broken("unreadable %s: %v", ManifestFile, err)
	}
	m.dir = dir
	if m.Net == "user" && m.HostAccess == "" {
		m.HostAccess = "loopback" // taken before the choice existed: full access
	}
	if m.DiskFormat != "" && m.DiskFormat != DiskQcow2 {
		return nil, broken("unknown disk format %q", m.DiskFormat)
	}
	want := append([]File{{Name: m.DiskFileName(), Size: m.DiskSize}}, m.StateFiles...)
	for _, f := range want {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		switch {
		case err != nil:
			return nil, broken("%s is missing", f.Name)
		case !st.Mode().IsRegular():
			return nil, broken("%s is not a regular file", f.Name)
		case st.Size() != f.Size:
			return nil, broken("%s has %d bytes, the manifest says %d (truncated?)", f.Name, st.Size(), f.Size)
		}
	}
	return &m, nil
}

// Listing is one snapshot directory: a good snapshot, or a broken one.
type Listing = stagedir.Listing[*Manifest]

// List returns every snapshot sorted by name; broken ones carry why.
func (s *Store) List() ([]Listing, error) { return stagedir.List(s.dir, "snapshot", s.Get) }

// Stage is a snapshot being assembled: a private hidden directory that
// Publish renames into place, or Abort removes.
type Stage struct {
	store *Store
	name  string
	Dir   string
}

// NewStage starts a snapshot called name; the caller holds its lock. A
// snapshot of that name already there is an error wrapping ErrExists.
func (s *Store) NewStage(name string) (*Stage, error) {
	stagedir.CleanLeftovers(s.dir, name)
	if _, err := os.Lstat(filepath.Join(s.dir, name)); err == nil {
		return nil, fmt.Errorf("snapshot %q already exists (hint: choose another name, or remove it with \"banger snapshot rm %s\"): %w", name, name, ErrExists)
	}
	dir, err := stagedir.Create(s.dir, name)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = stagedir.RemoveAll(dir)
		return nil, err
	}
	return &Stage{store: s, name: name, Dir: dir}, nil
}

// Publish writes m as the manifest and renames the stage into place.
func (st *Stage) Publish(m *Manifest) error {
	m.Name = st.name
	if err := stagedir.WriteJSON(filepath.Join(st.Dir, ManifestFile), m); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(st.Dir, ManifestFile), 0o600); err != nil {
		return err
	}
	if err := stagedir.Publish(st.store.dir, st.Dir, st.name, false); err != nil {
		if errors.Is(err, stagedir.ErrExists) {
			return fmt.Errorf("snapshot %q already exists: %w", st.name, ErrExists)
		}
		return err
	}
	m.dir = filepath.Join(st.store.dir, st.name)
	return nil
}

// Abort removes the stage.
func (st *Stage) Abort() { _ = stagedir.RemoveAll(st.Dir) }

// Remove deletes the snapshot called name. users names what still needs it
// (VMs whose first start restores it); unless force, any user is an
// error.
func (s *Store) Remove(ctx context.Context, name string, force bool, users func(string) ([]string, error)) error {
	l, err := s.Lock(ctx, name)
	if err != nil {
		return err
	}
	defer l.Unlock()
	stagedir.CleanLeftovers(s.dir, name)
	if _, err := os.Lstat(filepath.Join(s.dir, name)); errors.Is(err, fs.ErrNotExist) {
		return notFound(name)
	}
	if !force {
		if err := stagedir.CheckUsers("snapshot", name, "VM(s)", users); err != nil {
			return err
		}
	}
	if err := stagedir.Remove(s.dir, name); err != nil {
		return fmt.Errorf("removing snapshot %q: %w", name, err)
	}
	return nil
}

// RLock holds snapshot name shared: it cannot be removed or replaced
// until the lock is released. VM creation holds it while it copies the
// snapshot's disk.
func (s *Store) RLock(ctx context.Context, name string) (*lockfile.Lock, error) {
	l, err := lockfile.AcquireShared(ctx, s.lockPath(name), nil)
	if err != nil {
		return nil, fmt.Errorf("locking snapshot %q: %w", name, err)
	}
	return l, nil
}
