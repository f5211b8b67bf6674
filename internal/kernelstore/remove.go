package kernelstore

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

// Remove deletes the installed kernel name and nothing else. The directory
// first leaves its name atomically, so a removal interrupted half-way never
// leaves a partial kernel visible. Unless force, users (images and VMs
// that boot it) are asked under the kernel's lock, which VM creation holds
// shared: a kernel in use is refused with a *stagedir.InUseError.
func (s *Store) Remove(ctx context.Context, name string, force bool, users func(string) ([]string, error)) error {
	if err := paths.ValidateName("kernel", name); err != nil {
		return err
	}
	lock, err := lockfile.Acquire(ctx, s.lockPath(name), nil)
	if err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	defer lock.Unlock()
	s.cleanLeftovers(name)
	if _, err := os.Lstat(s.path(name)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kernel %q is not installed (hint: run \"banger kernel list\"): %w", name, ErrNotInstalled)
	}
	if !force {
		if err := stagedir.CheckUsers("kernel", name, "", users); err != nil {
			return err
		}
	}
	if err := stagedir.Remove(s.dir, name); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kernel %q is not installed (hint: run \"banger kernel list\"): %w", name, ErrNotInstalled)
	} else if err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	return nil
}

// RLock holds kernel name shared: it cannot be removed or replaced until
// the lock is released.
func (s *Store) RLock(ctx context.Context, name string) (*lockfile.Lock, error) {
	l, err := lockfile.AcquireShared(ctx, s.lockPath(name), nil)
	if err != nil {
		return nil, fmt.Errorf("locking kernel %q: %w", name, err)
	}
	return l, nil
}
