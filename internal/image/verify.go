package image

import (
	"context"
	"fmt"
)

// VerifyError says how an image's rootfs differs from its manifest.
type VerifyError struct{ Image, Problem string }

func (e *VerifyError) Error() string {
	return fmt.Sprintf("image %q does not match its manifest: %s (hint: rebuild or register it again; VMs already created keep their own disks)", e.Image, e.Problem)
}

// Verify re-hashes the rootfs of image name and compares its size and
// sha256 with the manifest. It returns a *VerifyError, or nil.
func (s *Store) Verify(ctx context.Context, name string) error {
	m, err := s.Get(name)
	if err != nil {
		return err
	}
	size, sum, err := hashFile(ctx, m.RootfsPath())
	if err != nil {
		return fmt.Errorf("verifying image %q: %w", name, err)
	}
	switch {
	case size != m.RootfsSize:
		return &VerifyError{Image: name, Problem: fmt.Sprintf("%s is %d bytes, the manifest says %d", RootfsFile, size, m.RootfsSize)}
	case sum != m.RootfsSHA256:
		return &VerifyError{Image: name, Problem: fmt.Sprintf("%s has sha256 %.12s…, the manifest says %.12s…", RootfsFile, sum, m.RootfsSHA256)}
	}
	return nil
}
