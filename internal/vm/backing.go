package vm

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/qcow2"
)

// checkDisk checks v's disk before a VMM opens it: a qcow2 overlay must
// name the backing file it was made over, and that must still be there
// and be the image rootfs it was.
func (s *Store) checkDisk(v *VM) error {
	d := v.Config.Disk
	if d.Format != DiskQcow2 {
		return nil
	}
	h, err := qcow2.ReadHeader(v.DiskPath())
	if err != nil {
		return fmt.Errorf("its disk: %w", err)
	}
	if h.BackingFile != d.Backing {
		return fmt.Errorf("its disk %s overlays %q, not the %s it was made over (hint: remove the VM with \"banger vm rm %s\")", v.DiskPath(), h.BackingFile, d.Backing, v.Name())
	}
	return s.checkBacking(v.Config.Image, d.Backing, d.BackingSHA256)
}

// checkBacking checks backing, the rootfs of image img that a qcow2 disk
// overlays: it must be an absolute path, exist, and (while it is still
// the image's rootfs) have the rootfs_sha256 sha it had when the overlay
// was made. A problem is a *BackingError.
func (s *Store) checkBacking(img, backing, sha string) error {
	bad := func(hint, format string, a ...any) error {
		return &BackingError{Image: img, Reason: fmt.Sprintf("its disk is an overlay of image %q, "+format, append([]any{img}, a...)...), Hint: hint}
	}
	if !filepath.IsAbs(backing) {
		return bad("remove what uses it", "but names its backing file %q by a relative path", backing)
	}
	if _, err := os.Stat(backing); err != nil {
		return bad(fmt.Sprintf("register that rootfs again as image %q (sha256 %.12s…), or remove what uses it", img, sha),
			"whose rootfs %s is gone: %v", backing, err)
	}
	m, err := image.New(s.Layout.ImagesDir()).Get(img)
	if err != nil {
		return nil // a broken image: its rootfs, which is what counts, is there
	}
	if p, err := filepath.Abs(m.RootfsPath()); err == nil && p == backing && m.RootfsSHA256 != sha {
		return bad("remove what uses it: the disk cannot be read without the rootfs it was made over",
			"which was replaced since (rootfs sha256 %.12s…, the overlay's %.12s…)", m.RootfsSHA256, sha)
	}
	return nil
}

// BackingError is a qcow2 disk whose backing file (an image's rootfs) is
// gone or was replaced.
type BackingError struct {
	Image  string
	Reason string // what is wrong, "its disk is an overlay of image …"
	Hint   string // the way out
}

func (e *BackingError) Error() string { return e.Reason + " (hint: " + e.Hint + ")" }
