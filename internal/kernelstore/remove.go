package kernelstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
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
	dir := s.path(name)
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("kernel %q is not installed (hint: run \"banger kernel list\"): %w", name, ErrNotInstalled)
	}
	old := filepath.Join(s.dir, ".old-"+name+"-"+randSuffix())
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	return syncDir(s.dir)
}
