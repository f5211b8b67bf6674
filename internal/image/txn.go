package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
)

// Leftovers of interrupted runs are hidden dot-directories beside the
// images: .tmp-<name>-<rand> (being built) and .old-<name>-<rand> (being
// removed). They are deleted only while the name's lock is held.

// Txn is an image being created: write the rootfs to RootfsPath, then
// Commit, or Abort. It holds the image name's lock throughout, so two
// builds of one name never interleave.
type Txn struct {
	s     *Store
	name  string
	dir   string
	force bool
	lock  *lockfile.Lock
}

// Begin starts creating the image called name. Unless force is set, an
// existing image of that name is an error wrapping ErrExists; with force,
// an existing image that disks overlay (Options.Overlays) is refused with a
// *stagedir.InUseError. onWait is called if another banger holds the
// name's lock.
func (s *Store) Begin(ctx context.Context, name string, force bool, onWait func()) (*Txn, error) {
	if err := paths.ValidateName("image", name); err != nil {
		return nil, err
	}
	lock, err := lockfile.Acquire(ctx, s.lockPath(name), onWait)
	if err != nil {
		return nil, fmt.Errorf("locking image %q: %w", name, err)
	}
	stagedir.CleanLeftovers(s.dir, name)
	if _, err := os.Stat(s.path(name)); err == nil {
		if !force {
			lock.Unlock()
			return nil, &ExistsError{Name: name}
		}
		if err := s.checkOverlays(name); err != nil {
			lock.Unlock()
			return nil, err
		}
	}
	dir, err := stagedir.Create(s.dir, name)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	return &Txn{s: s, name: name, dir: dir, force: force, lock: lock}, nil
}

// Dir is the hidden directory the image is assembled in.
func (t *Txn) Dir() string { return t.dir }

// RootfsPath is where the new rootfs must be written.
func (t *Txn) RootfsPath() string { return filepath.Join(t.dir, RootfsFile) }

// Abort removes everything the transaction wrote and releases the lock.
// It is a no-op after Commit.
func (t *Txn) Abort() {
	if t.lock == nil {
		return
	}
	os.RemoveAll(t.dir)
	t.lock.Unlock()
	t.lock = nil
}

// Commit records the rootfs's size and sha256 in m, writes the manifest and
// makes the image visible under its name in one rename (replacing an old
// image atomically when forced). Everything is flushed to disk first.
func (t *Txn) Commit(ctx context.Context, m *Manifest) (*Manifest, error) {
	if t.lock == nil {
		return nil, errors.New("image transaction already finished")
	}
	defer t.Abort()
	// Flushing the rootfs to disk (I/O) and hashing it (CPU) overlap.
	synced := make(chan error, 1)
	go func() { synced <- syncFile(t.RootfsPath()) }()
	size, sum, err := hashFile(ctx, t.RootfsPath())
	if serr := <-synced; serr != nil && err == nil {
		return nil, fmt.Errorf("flushing image %q to disk: %w", t.name, serr)
	}
	if err != nil {
		return nil, fmt.Errorf("hashing the rootfs of image %q: %w", t.name, err)
	}
	m.Name, m.RootfsSize, m.RootfsSHA256 = t.name, size, sum
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC()
	}
	if err := stagedir.WriteJSON(filepath.Join(t.dir, ManifestFile), m); err != nil {
		return nil, fmt.Errorf("image %q: %w", t.name, err)
	}
	if err := stagedir.Publish(t.s.dir, t.dir, t.name, t.force); err != nil {
		return nil, fmt.Errorf("installing image %q: %w", t.name, err)
	}
	m.dir = t.s.path(t.name)
	return m, nil
}

// hashFile returns the size and sha256 of path, checking ctx as it goes.
// Holes (found with SEEK_DATA/SEEK_HOLE) are hashed as the zeros they
// read as, without reading them.
func hashFile(ctx context.Context, path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	size := st.Size()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	zeros := make([]byte, 1<<20)
	for pos := int64(0); pos < size; {
		if err := ctx.Err(); err != nil {
			return 0, "", err
		}
		data, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			data = size // only a hole remains
		} else if err != nil {
			data = pos // no SEEK_DATA: read everything
		}
		for ; pos < data; pos += int64(min(int64(len(zeros)), data-pos)) {
			h.Write(zeros[:min(int64(len(zeros)), data-pos)])
		}
		if pos >= size {
			break
		}
		end, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_HOLE)
		if err != nil || end > size {
			end = size
		}
		n, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(f, pos, end-pos)}, buf)
		if err != nil {
			return 0, "", err
		}
		if n != end-pos {
			return 0, "", fmt.Errorf("%s changed while hashing", path)
		}
		pos = end
	}
	return size, hex.EncodeToString(h.Sum(nil)), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncFile flushes one file's data to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
