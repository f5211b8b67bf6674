package guestcopy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/thaloco/banger/internal/diskcopy"
)

// hostSource reads the host's files by the paths the caller gave.
type hostSource struct{}

func (hostSource) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }
func (hostSource) Stat(name string) (fs.FileInfo, error)  { return os.Stat(name) }
func (hostSource) Readlink(name string) (string, error)   { return os.Readlink(name) }
func (hostSource) guest() bool                            { return false }
func (hostSource) classify(err error, _ string) error     { return classifyHost(err) }

func (hostSource) ReadDir(name string) ([]fs.FileInfo, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	infos := make([]fs.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		infos = append(infos, fi)
	}
	return infos, nil
}

func (hostSource) Open(_ context.Context, name string) (srcFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return hostFile{f}, nil
}

type hostFile struct{ *os.File }

func (f hostFile) NextData(pos, size int64) (start, end int64, ok bool) {
	return diskcopy.NextData(f.File, pos, size)
}

// hostDest writes under one host directory through os.Root: whatever the
// guest names, nothing is written outside it, nor through a symbolic link
// leaving it.
type hostDest struct {
	root *os.Root
	base string // the directory root was opened at, for messages
}

func openHostDest(dir string) (*hostDest, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &hostDest{root: r, base: dir}, nil
}

func (h *hostDest) Close() error { return h.root.Close() }

func (h *hostDest) Lstat(name string) (fs.FileInfo, error) { return h.root.Lstat(name) }
func (h *hostDest) Mkdir(name string) error                { return h.root.Mkdir(name, 0o700) }
func (h *hostDest) Symlink(target, name string) error      { return h.root.Symlink(target, name) }
func (h *hostDest) Rename(oldname, newname string) error   { return h.root.Rename(oldname, newname) }
func (h *hostDest) RemoveAll(name string) error            { return h.root.RemoveAll(name) }
func (h *hostDest) Show(name string) string                { return filepath.Join(h.base, name) }
func (h *hostDest) guest() bool                            { return false }
func (h *hostDest) classify(err error, _ string) error     { return classifyHost(err) }

func (h *hostDest) Chmod(name string, mode fs.FileMode) error { return h.root.Chmod(name, mode) }

func (h *hostDest) Chtimes(name string, atime, mtime time.Time) error {
	return h.root.Chtimes(name, atime, mtime)
}

func (h *hostDest) Create(name string) (dstFile, error) {
	return h.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

func (h *hostDest) SyncDir(name string) error {
	d, err := h.root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
