package ext4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/thaloco/banger/internal/childproc"
	"github.com/thaloco/banger/internal/logtail"
)

// ErrTooSmall is wrapped when the tree does not fit in the requested size.
var ErrTooSmall = errors.New("image size too small")

// MakeOptions says what Make writes.
type MakeOptions struct {
	Dir    string // the tree copied into the filesystem (mkfs.ext4 -d)
	Size   int64  // image size in bytes
	Inodes int64  // inodes the tree needs (DirUsage); 0 lets mkfs.ext4 choose
	Label  string // volume label, at most 16 bytes
	// MapRoot runs mkfs.ext4 in a user namespace that maps the caller to
	// root, so files the (unprivileged) caller owns are recorded as root's.
	MapRoot bool
}

// Make writes a new ext4 image at out (which must not exist) holding the
// tree opts.Dir with its owners, modes, links, device nodes and xattrs, by
// running mkfs.ext4 -d. The image is a sparse file of opts.Size bytes. On
// failure out is removed.
func Make(ctx context.Context, out string, opts MakeOptions) (err error) {
	if opts.Size < 8<<20 {
		return fmt.Errorf("ext4 image size %d is below the 8 MiB minimum", opts.Size)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating ext4 image: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(out)
		}
	}()
	terr := f.Truncate(opts.Size)
	if cerr := f.Close(); terr == nil {
		terr = cerr
	}
	if terr != nil {
		return fmt.Errorf("creating ext4 image %s: %w", out, terr)
	}
	// lazy_journal_init: the file is new and sparse, so the journal area
	// already reads as zeros; writing 32+ MiB of zeros over the holes
	// would only cost time and disk.
	args := []string{"-q", "-F", "-t", "ext4", "-b", strconv.Itoa(BlockSize), "-E", "lazy_journal_init=1", "-d", opts.Dir}
	if opts.Label != "" {
		args = append(args, "-L", opts.Label)
	}
	// mkfs.ext4's default is one inode per 16 KiB; make sure a tree of
	// many small files fits, with room for as many again.
	if want := opts.Inodes*2 + 4096; opts.Inodes > 0 && opts.Size/16384 < want {
		args = append(args, "-N", strconv.FormatInt(want, 10))
	}
	args = append(args, out)
	cmd := childproc.Command(ctx, "mkfs.ext4", args...)
	if opts.MapRoot {
		cmd = childproc.Command(ctx, "unshare", append([]string{"--map-root-user", "--", "mkfs.ext4"}, args...)...)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("mkfs.ext4 not found (hint: install e2fsprogs)")
		}
		msg := strings.TrimSpace(stderr.String())
		switch {
		case strings.Contains(msg, "No space left on device"):
			return &NoSpaceError{Path: out}
		case strings.Contains(msg, "Could not allocate"):
			return fmt.Errorf("the tree does not fit in a %d MiB ext4 image: %s: %w", opts.Size>>20, logtail.Quote(msg, 1), ErrTooSmall)
		}
		return fmt.Errorf("mkfs.ext4 -d %s: %w: %s", opts.Dir, err, logtail.Quote(msg, 5))
	}
	return nil
}

// NoSpaceError is mkfs.ext4 running out of space for the image at Path.
// It is syscall.ENOSPC, and its message already says what to do.
type NoSpaceError struct{ Path string }

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("writing ext4 image %s: %v (hint: free some space there)", e.Path, syscall.ENOSPC)
}

func (e *NoSpaceError) Unwrap() error { return syscall.ENOSPC }
