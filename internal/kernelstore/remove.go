package kernelstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
)

// Remove deletes the installed kernel name and nothing else. The directory
// first leaves its name atomically, so a removal interrupted half-way never
// leaves a partial kernel visible.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := paths.ValidateName("kernel", name); err != nil {
		return err
	}
	lock, err := lockfile.Acquire(ctx, s.lockPath(name), nil)
	if err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	defer lock.Unlock()
	s.cleanLeftovers(name)
	if err := stagedir.Remove(s.dir, name); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kernel %q is not installed (hint: run \"banger kernel list\"): %w", name, ErrNotInstalled)
	} else if err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	return nil
}
