package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/thaloco/banger/internal/childproc"
	"github.com/thaloco/banger/internal/diskcopy"
	"github.com/thaloco/banger/internal/qcow2"
)

// Disk formats.
const (
	DiskRaw   = "raw"
	DiskQcow2 = "qcow2"
)

// Disk is how a VM's disk was made. The zero value is a raw disk made by
// a version that did not record how.
type Disk struct {
	// Format is DiskRaw or DiskQcow2 ("" is raw).
	Format string `json:"format,omitempty"`
	// Copy is how a raw disk was copied from its source: "reflink" (the
	// blocks are shared until written) or "copy".
	Copy string `json:"copy,omitempty"`
	// Backing is the absolute path of the image rootfs a qcow2 disk
	// overlays, and BackingSHA256 that image's rootfs_sha256 when the
	// overlay was made: over other bytes the overlay means nothing.
	Backing       string `json:"backing,omitempty"`
	BackingSHA256 string `json:"backing_sha256,omitempty"`
}

// DiskKind says what the VM's disk is: "qcow2 overlay of image NAME",
// "raw (reflink)", "raw (copy)", or "raw" for a disk made by a version
// that did not record how.
func (c Config) DiskKind() string {
	switch {
	case c.Disk.Format == DiskQcow2:
		return "qcow2 overlay of image " + c.Image
	case c.Disk.Copy != "":
		return "raw (" + c.Disk.Copy + ")"
	}
	return DiskRaw
}

// source is what a new VM's disk is made from.
type source struct {
	path string // the file to overlay or copy
	// imageSHA256 is the image's rootfs_sha256 when path is an image's
	// rootfs (it may then be overlaid).
	imageSHA256 string
	// snapshot: path is a snapshot's disk, copied as it is (a qcow2
	// overlay stays one, over the same backing file).
	snapshot bool
}

// makeDisk writes v's disk from src and grows it to v.Config.DiskSize,
// recording in v.Config.Disk what it made. A QEMU VM made from an image
// gets a qcow2 overlay of the image's rootfs: a few hundred KiB, whatever
// the image's size. Other VMs (Firecracker boots raw files only, and a
// --rootfs file is the user's to change) get a raw reflink or sparse
// copy.
func (s *Store) makeDisk(ctx context.Context, v *VM, src source) error {
	c := &v.Config
	st, err := os.Stat(src.path)
	if err != nil {
		return err
	}
	if src.snapshot {
		m, err := diskcopy.CopyMethod(ctx, v.DiskPath(), src.path, diskcopy.Options{Perm: 0o600})
		if c.Disk.Format != DiskQcow2 {
			c.Disk.Copy = string(m)
		}
		return err
	}
	grow := c.DiskSize > st.Size()
	c.DiskSize = max(c.DiskSize, st.Size())
	why := s.overlayable(c, src, grow)
	if why == "" {
		err := s.makeOverlay(ctx, v, src, grow)
		var ee *qcow2.ExportError
		if !errors.As(err, &ee) {
			return err
		}
		// The host has the tools but its FUSE mounts fail.
		why = "growing an overlay's filesystem needs a FUSE export: " + ee.Error()
		if err := os.Remove(v.DiskPath()); err != nil {
			return err
		}
		c.Disk = Disk{}
	}
	if src.imageSHA256 != "" && c.VMM == VMMQEMU {
		s.logf("VM %q gets a raw copy of image %q, not an overlay: %s", c.Name, c.Image, why)
	}
	m, err := diskcopy.CopyMethod(ctx, v.DiskPath(), src.path, diskcopy.Options{Perm: 0o600})
	if err != nil {
		return err
	}
	c.Disk = Disk{Format: DiskRaw, Copy: string(m)}
	if grow {
		return growDisk(ctx, v.DiskPath(), c.DiskSize)
	}
	return nil
}

// makeOverlay makes v's disk a qcow2 overlay of src, an image's rootfs,
// and with grow grows it and its filesystem to v.Config.DiskSize.
func (s *Store) makeOverlay(ctx context.Context, v *VM, src source, grow bool) error {
	c := &v.Config
	backing, err := filepath.Abs(src.path)
	if err != nil {
		return err
	}
	c.Disk = Disk{Format: DiskQcow2, Backing: backing, BackingSHA256: src.imageSHA256}
	size := int64(0)
	if grow {
		size = c.DiskSize
	}
	if err := qcow2.Create(v.DiskPath(), backing, size); err != nil {
		return err
	}
	if grow {
		return growOverlay(ctx, v.DiskPath(), filepath.Join(v.Dir, growMount))
	}
	return nil
}

// overlayable says why the VM configured by c cannot have a qcow2 overlay
// of src, "" if it can.
func (s *Store) overlayable(c *Config, src source, grow bool) string {
	switch {
	case c.VMM != VMMQEMU:
		return "Firecracker boots raw disks only"
	case src.imageSHA256 == "":
		return "its source is not an image"
	}
	if grow {
		if err := qcow2.CheckExport(); err != nil {
			return "growing an overlay's filesystem needs a FUSE export: " + err.Error()
		}
	}
	return ""
}

// growDisk enlarges the raw ext4 image at path to size bytes: the file
// grows sparsely, then resize2fs grows the filesystem into it.
func growDisk(ctx context.Context, path string, size int64) error {
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("growing disk: %w", err)
	}
	return resizeFS(ctx, path)
}

// growOverlay grows the filesystem in the qcow2 overlay disk to the
// overlay's size. resize2fs cannot open qcow2, and the usual way to give
// it a block device (qemu-nbd) needs the kernel's nbd module, which hosts
// and containers often lack: qemu-storage-daemon serves the overlay as a
// raw file over FUSE at mnt instead. What resize2fs writes (the new block
// groups' metadata) lands in the overlay; the backing rootfs is read only.
func growOverlay(ctx context.Context, disk, mnt string) (err error) {
	e, err := qcow2.ExportRaw(ctx, disk, mnt)
	if err != nil {
		return fmt.Errorf("growing the disk's filesystem: %w", err)
	}
	defer func() {
		if cerr := e.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("growing the disk's filesystem: %w", cerr)
		}
	}()
	return resizeFS(ctx, e.Path)
}

// resizeFS grows the ext4 filesystem in the raw file path to the file's
// size. resize2fs wants a filesystem that is clean and checked since it
// was last mounted, as an image's rootfs is (made by mkfs, never mounted
// itself); for one that is not, e2fsck runs first.
func resizeFS(ctx context.Context, path string) error {
	err := run(ctx, "resize2fs", path)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "e2fsck -f") {
		if err != nil {
			return fmt.Errorf("growing the disk's filesystem: %w", err)
		}
		return nil
	}
	// e2fsck exits 1 when it fixed something harmless (e.g. timestamps).
	if err := run(ctx, "e2fsck", "-fp", path); err != nil && !exitCode(err, 1) {
		return fmt.Errorf("checking the disk before resizing: %w", err)
	}
	if err := run(ctx, "resize2fs", path); err != nil {
		return fmt.Errorf("growing the disk's filesystem: %w", err)
	}
	return nil
}

// run runs a command, its stderr captured into the error.
func run(ctx context.Context, name string, args ...string) error {
	cmd := childproc.Command(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		return &runError{
			msg:  fmt.Sprintf("%s: %v: %s", name, err, msg),
			err:  err,
			full: strings.Contains(msg, "No space left on device"),
		}
	}
	return nil
}

// runError is a command's failure with its stderr. It is syscall.ENOSPC
// too when the command said the disk is full.
type runError struct {
	msg  string
	err  error
	full bool
}

func (e *runError) Error() string { return e.msg }

func (e *runError) Unwrap() []error {
	if e.full {
		return []error{e.err, syscall.ENOSPC}
	}
	return []error{e.err}
}

func exitCode(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// hostMemoryMiB is MemTotal from /proc/meminfo in MiB, 0 if unknown.
func hostMemoryMiB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}
