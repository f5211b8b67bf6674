package kernelstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/archive"
	"github.com/thaloco/banger/internal/fetch"
	"github.com/thaloco/banger/internal/kernelcat"
	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Force reinstalls even when the same tarball is installed, and
	// replaces a kernel that was imported under the same name.
	Force bool
	// As installs the entry under this local name instead of its catalog
	// name (so that, say, both architectures of one catalog name can be
	// installed); "" is the catalog name.
	As string
	// Progress, if set, returns the writer that counts downloaded bytes
	// (a progress bar) for a download of total bytes; done is called once
	// with the outcome.
	Progress func(total int64) (w io.Writer, done func(error))
	// Logf reports waits, retries and resumes; nil discards them.
	Logf func(format string, args ...any)
}

// PullResult says what Pull did.
type PullResult struct {
	Manifest *Manifest
	// AlreadyInstalled: the same tarball was installed; nothing was
	// downloaded.
	AlreadyInstalled bool
	// Replaced: an older install under the same name was replaced.
	Replaced bool
}

func (o *PullOptions) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Pull downloads the bundle of catalog entry e, verifies its size and
// sha256 while it streams, extracts it beside the target, flushes it to
// disk and renames it into place only when everything matched. Concurrent
// pulls of one name are serialized: the second waits and then finds it
// installed.
func (s *Store) Pull(ctx context.Context, e kernelcat.Entry, opts PullOptions) (PullResult, error) {
	name := e.Name
	if opts.As != "" {
		name = opts.As
	}
	if err := paths.ValidateName("kernel", name); err != nil {
		return PullResult{}, err
	}
	lock, err := lockfile.Acquire(ctx, s.lockPath(name), func() {
		opts.logf("waiting for another banger to finish installing kernel %s", name)
	})
	if err != nil {
		return PullResult{}, fmt.Errorf("pulling kernel %q: %w", name, err)
	}
	defer lock.Unlock()
	s.cleanLeftovers(name)

	var res PullResult
	if cur, err := s.Get(name); err == nil {
		switch {
		case cur.Source == SourceImport && !opts.Force:
			return PullResult{}, &InstalledError{Name: name, Imported: true}
		case cur.Arch != e.Arch && !opts.Force:
			return PullResult{}, &InstalledError{Name: name, Arch: cur.Arch, PullArch: e.Arch, Entry: e.Name}
		case cur.CatalogEntry() != e.Name && !opts.Force:
			return PullResult{}, &InstalledError{Name: name, InstalledEntry: cur.CatalogEntry(), Entry: e.Name}
		case cur.TarballSHA256 == e.SHA256 && !opts.Force:
			return PullResult{Manifest: cur, AlreadyInstalled: true}, nil
		}
		res.Replaced = true
	} else if !errors.Is(err, ErrNotInstalled) {
		res.Replaced = true // broken install: replace it
	}

	st, err := s.newStage(name)
	if err != nil {
		return PullResult{}, err
	}
	defer st.remove()
	files, err := s.download(ctx, e, st.dir, opts)
	if err != nil {
		return PullResult{}, err
	}
	if err := arch.CheckKernel(filepath.Join(st.dir, "vmlinux"), e.Arch); err != nil {
		return PullResult{}, fmt.Errorf("pulling kernel %q for %s: %w (hint: the catalog entry's arch or its bundle is wrong: %s)", e.Name, e.Arch, err, redacted(e.URL))
	}
	m := &Manifest{
		Name: name, Distro: e.Distro, Arch: e.Arch, KernelVersion: e.KernelVersion,
		Description: e.Description, Source: SourceCatalog, URL: e.URL,
		TarballSHA256: e.SHA256, TarballSize: e.Size, InstalledAt: time.Now().UTC().Truncate(time.Second),
		Files: files,
	}
	// fetch removed the partial download when the stream ended verified.
	if name != e.Name {
		m.CatalogName = e.Name
	}
	if err := s.commit(st, name, m); err != nil {
		return PullResult{}, err
	}
	res.Manifest = m
	return res, nil
}

// partialMaxAge is how long a partial download is kept for a later pull
// to resume, counted from its last write.
const partialMaxAge = 7 * 24 * time.Hour

func (s *Store) partialDir() string { return filepath.Join(s.dir, ".partial") }

func (s *Store) partialPath(sha string) string {
	return filepath.Join(s.partialDir(), sha+".tar.zst.part")
}

// prunePartials removes the partial downloads last written more than
// partialMaxAge ago, except those a pull is using right now (fetch holds a
// flock on each while it downloads).
func (s *Store) prunePartials() {
	fetch.PruneStale(s.partialDir(), time.Now().Add(-partialMaxAge))
}

// download streams the tarball into tmp. Hashing, decompression and writes
// overlap; the hash is checked before download returns.
func (s *Store) download(ctx context.Context, e kernelcat.Entry, tmp string, opts PullOptions) ([]archive.File, error) {
	if err := os.MkdirAll(filepath.Dir(s.partialPath(e.SHA256)), 0o755); err != nil {
		return nil, fmt.Errorf("pulling kernel %q: %w", e.Name, err)
	}
	fo := fetch.Options{Partial: s.partialPath(e.SHA256), Logf: opts.Logf}
	done := func(error) {}
	if opts.Progress != nil {
		fo.Progress, done = opts.Progress(e.Size)
	}
	body, err := fetch.Open(ctx, fetch.Source{URL: e.URL, Size: e.Size, SHA256: e.SHA256}, fo)
	if err != nil {
		done(err)
		return nil, fmt.Errorf("pulling kernel %q: %w", e.Name, err)
	}
	defer body.Close()
	// Only now: the download holds its own partial file, which is kept
	// however old, since it is being resumed.
	s.prunePartials()
	files, xerr := archive.ExtractBundle(ctx, body, tmp, archive.DefaultLimits())
	// Read to the end so the size and digest are checked. A digest
	// mismatch explains a broken archive better than the archive error,
	// and a failed download better than the archive's report of it (which
	// would blame the decompression).
	_, derr := io.Copy(io.Discard, body)
	var de *fetch.DigestError
	var se *fetch.SizeError
	switch {
	case errors.As(derr, &de) || errors.As(derr, &se):
		err = derr
	case derr != nil && errors.Is(xerr, derr):
		err = derr
	case xerr != nil:
		err = fmt.Errorf("unpacking %s: %w", redacted(e.URL), xerr)
	default:
		err = derr
	}
	done(err)
	if err != nil {
		return nil, s.diskFull(fmt.Errorf("pulling kernel %q: %w", e.Name, err))
	}
	return files, nil
}

// diskFull marks an ENOSPC error with the directory that needs space.
func (s *Store) diskFull(err error) error {
	if !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	return &NoSpaceError{Dir: s.dir, Err: err}
}

// redacted is rawURL with any password hidden, for error messages.
func redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Redacted()
}
