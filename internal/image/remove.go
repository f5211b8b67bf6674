package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
)

// Remove deletes the image called name, broken or not. It first moves the
// directory out of sight so a crash midway never leaves half an image
// under the name. Unless force, users (the VMs made from it) are asked
// under the image's lock, which VM creation holds shared while it copies
// the image: an image in use is refused with a *stagedir.InUseError. An
// image whose rootfs disks overlay (Options.Overlays) is refused even with
// force: removing it would lose their data.
func (s *Store) Remove(ctx context.Context, name string, force bool, users func(string) ([]string, error)) error {
	if err := paths.ValidateName("image", name); err != nil {
		return err
	}
	lock, err := lockfile.Acquire(ctx, s.lockPath(name), nil)
	if err != nil {
		return fmt.Errorf("locking image %q: %w", name, err)
	}
	defer lock.Unlock()
	stagedir.CleanLeftovers(s.dir, name)
	if _, err := os.Lstat(s.path(name)); errors.Is(err, fs.ErrNotExist) {
		return notFound(name)
	}
	if err := s.checkOverlays(name); err != nil {
		return err
	}
	if !force {
		if err := stagedir.CheckUsers("image", name, "VM(s)", users); err != nil {
			return err
		}
	}
	if err := stagedir.Remove(s.dir, name); errors.Is(err, fs.ErrNotExist) {
		return notFound(name)
	} else if err != nil {
		return fmt.Errorf("removing image %q: %w", name, err)
	}
	return nil
}

// RLock holds image name shared: it cannot be removed or replaced until
// the lock is released. VM creation holds it while it copies the rootfs.
func (s *Store) RLock(ctx context.Context, name string) (*lockfile.Lock, error) {
	l, err := lockfile.AcquireShared(ctx, s.lockPath(name), nil)
	if err != nil {
		return nil, fmt.Errorf("locking image %q: %w", name, err)
	}
	return l, nil
}
