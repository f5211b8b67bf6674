package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
)

// Remove deletes the image called name, broken or not. It first moves the
// directory out of sight so a crash midway never leaves half an image
// under the name. Checking that no VM uses the image is the caller's job.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := paths.ValidateName("image", name); err != nil {
		return err
	}
	lock, err := lockfile.Acquire(ctx, s.lockPath(name), nil)
	if err != nil {
		return fmt.Errorf("locking image %q: %w", name, err)
	}
	defer lock.Unlock()
	s.cleanLeftovers(name)
	dir := s.path(name)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return notFound(name)
	}
	old := filepath.Join(s.dir, ".old-"+name+"-"+randSuffix())
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("removing image %q: %w", name, err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing image %q: %w", name, err)
	}
	return nil
}
