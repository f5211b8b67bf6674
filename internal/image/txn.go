package image

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
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
// existing image of that name is an error wrapping ErrExists. onWait is
// called if another banger holds the name's lock.
func (s *Store) Begin(ctx context.Context, name string, force bool, onWait func()) (*Txn, error) {
	if err := paths.ValidateName("image", name); err != nil {
		return nil, err
	}
	lock, err := lockfile.Acquire(ctx, s.lockPath(name), onWait)
	if err != nil {
		return nil, fmt.Errorf("locking image %q: %w", name, err)
	}
	s.cleanLeftovers(name)
	if !force {
		if _, err := os.Stat(s.path(name)); err == nil {
			lock.Unlock()
			return nil, fmt.Errorf("image %q already exists (hint: pass --force to replace it, or choose another --name): %w", name, ErrExists)
		}
	}
	dir := filepath.Join(s.dir, ".tmp-"+name+"-"+randSuffix())
	if err := os.Mkdir(dir, 0o755); err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("creating a temporary directory for image %q: %w", name, err)
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
	if err := writeManifest(t.dir, m); err != nil {
		return nil, fmt.Errorf("image %q: %w", t.name, err)
	}
	if err := syncDir(t.dir); err != nil {
		return nil, fmt.Errorf("flushing image %q to disk: %w", t.name, err)
	}
	final := t.s.path(t.name)
	err = unix.Renameat2(unix.AT_FDCWD, t.dir, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if t.force && (errors.Is(err, unix.EEXIST) || errors.Is(err, fs.ErrExist)) {
		// Swap the new image in atomically; the old one ends up at t.dir
		// and is removed by Abort.
		err = unix.Renameat2(unix.AT_FDCWD, t.dir, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
	}
	if err != nil {
		return nil, fmt.Errorf("installing image %q into %s: %w", t.name, final, err)
	}
	if err := syncDir(t.s.dir); err != nil {
		return nil, err
	}
	m.dir = final
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

func randSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cleanLeftovers removes what interrupted runs left for name. The caller
// holds name's lock.
func (s *Store) cleanLeftovers(name string) {
	for _, prefix := range []string{".tmp-", ".old-"} {
		matches, _ := filepath.Glob(filepath.Join(s.dir, prefix+name+"-*"))
		for _, m := range matches {
			// The suffix is 12 hex digits: don't touch another name that
			// merely starts with this one.
			if rest := strings.TrimPrefix(filepath.Base(m), prefix+name+"-"); len(rest) == 12 && !strings.Contains(rest, "-") {
				os.RemoveAll(m)
			}
		}
	}
}

func writeManifest(dir string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ManifestFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	return nil
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

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
