package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
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
	stagedir.CleanLeftovers(s.dir, name)
	if err := stagedir.Remove(s.dir, name); errors.Is(err, fs.ErrNotExist) {
		return notFound(name)
	} else if err != nil {
		return fmt.Errorf("removing image %q: %w", name, err)
	}
	return nil
}
