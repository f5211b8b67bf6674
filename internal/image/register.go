package image

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/thaloco/banger/internal/diskcopy"
	"github.com/thaloco/banger/internal/ext4"
	"github.com/thaloco/banger/internal/paths"
)

// RegisterOptions says how Register adds an existing rootfs.
type RegisterOptions struct {
	KernelRef string // kernel the image boots with; must be installed
	Force     bool   // replace an existing image of the same name
	// CheckKernel returns an error (with a hint) unless the kernel is
	// installed; kernelstore.Store.Get fits.
	CheckKernel func(name string) error
	// OnWait is called if another banger holds the image name's lock.
	OnWait func()
}

// Register adds the ext4 image at rootfs as the image called name: it
// checks the superblock and the kernel, then copies the file in (a reflink
// where possible, holes kept) and commits it atomically.
func (s *Store) Register(ctx context.Context, name, rootfs string, opts RegisterOptions) (*Manifest, error) {
	if err := paths.ValidateName("image", name); err != nil {
		return nil, err
	}
	if opts.KernelRef == "" {
		return nil, ErrNoKernel
	}
	if opts.CheckKernel != nil {
		if err := opts.CheckKernel(opts.KernelRef); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return nil, fmt.Errorf("resolving rootfs path %q: %w", rootfs, err)
	}
	if _, err := ext4.Check(abs); err != nil {
		return nil, err
	}
	txn, err := s.Begin(ctx, name, opts.Force, opts.OnWait)
	if err != nil {
		return nil, err
	}
	defer txn.Abort()
	if err := diskcopy.CopyWith(ctx, txn.RootfsPath(), abs, diskcopy.Options{Perm: 0o600}); err != nil {
		return nil, fmt.Errorf("registering image %q: %w", name, err)
	}
	return txn.Commit(ctx, &Manifest{KernelRef: opts.KernelRef, Source: SourceRegister, RegisteredFrom: abs})
}
