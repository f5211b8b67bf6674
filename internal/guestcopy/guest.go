package guestcopy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// guestFS is the guest's side, through its SFTP server. Paths are the
// server's: relative ones start at the login user's home directory.
type guestFS struct {
	c           *sftp.Client
	ssh         *ssh.Client // to map large files' holes (dataRegions)
	posixRename bool        // posix-rename@openssh.com: rename over an existing file
	fsync       bool        // fsync@openssh.com
	statvfs     bool        // statvfs@openssh.com
}

func newGuestFS(c *sftp.Client, conn *ssh.Client) *guestFS {
	has := func(ext string) bool { _, ok := c.HasExtension(ext); return ok }
	return &guestFS{
		c:           c,
		ssh:         conn,
		posixRename: has("posix-rename@openssh.com"),
		fsync:       has("fsync@openssh.com"),
		statvfs:     has("statvfs@openssh.com"),
	}
}

func (g *guestFS) guest() bool { return true }

func (g *guestFS) classify(err error, name string) error {
	var statfs func() (*sftp.StatVFS, error)
	if g.statvfs {
		statfs = func() (*sftp.StatVFS, error) { return g.c.StatVFS(path.Dir(name)) }
	}
	return classifyGuest(err, statfs)
}

func (g *guestFS) Lstat(name string) (fs.FileInfo, error)     { return g.c.Lstat(name) }
func (g *guestFS) Stat(name string) (fs.FileInfo, error)      { return g.c.Stat(name) }
func (g *guestFS) ReadDir(name string) ([]fs.FileInfo, error) { return g.c.ReadDir(name) }
func (g *guestFS) Readlink(name string) (string, error)       { return g.c.ReadLink(name) }
func (g *guestFS) Symlink(target, name string) error          { return g.c.Symlink(target, name) }
func (g *guestFS) RemoveAll(name string) error                { return g.c.RemoveAll(name) }
func (g *guestFS) Show(name string) string                    { return name }
func (g *guestFS) SyncDir(string) error                       { return nil }

func (g *guestFS) Chmod(name string, mode fs.FileMode) error { return g.c.Chmod(name, mode) }

func (g *guestFS) Chtimes(name string, atime, mtime time.Time) error {
	return g.c.Chtimes(name, atime, mtime)
}

// Mkdir makes the directory private at once: SFTP cannot pass a mode
// with mkdir, so the server's default (0777 less its umask) holds for a
// moment, during which nothing is in it yet.
func (g *guestFS) Mkdir(name string) error {
	if err := g.c.Mkdir(name); err != nil {
		return err
	}
	return g.c.Chmod(name, 0o700)
}

// Create makes a file with the server's default mode; the copy creates
// files only inside a directory made with Mkdir, so others cannot open it
// meanwhile.
func (g *guestFS) Create(name string) (dstFile, error) {
	f, err := g.c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, err
	}
	return &guestFile{File: f, fsync: g.fsync}, nil
}

// Rename replaces newname atomically with posix-rename@openssh.com. A
// server without it renames only to a free name, so an existing file is
// removed first.
func (g *guestFS) Rename(oldname, newname string) error {
	if g.posixRename {
		return g.c.PosixRename(oldname, newname)
	}
	err := g.c.Rename(oldname, newname)
	if err == nil {
		return nil
	}
	if fi, serr := g.c.Lstat(newname); serr != nil || fi.IsDir() {
		return err
	}
	if rerr := g.c.Remove(newname); rerr != nil {
		return errors.Join(err, rerr)
	}
	return g.c.Rename(oldname, newname)
}

func (g *guestFS) Open(ctx context.Context, name string) (srcFile, error) {
	f, err := g.c.Open(name)
	if err != nil {
		return nil, err
	}
	gf := &guestFile{File: f}
	if fi, err := f.Stat(); err == nil && fi.Size() >= mapMinSize {
		gf.regions, gf.mapped = dataRegions(ctx, g.ssh, name, fi.Size())
	}
	return gf, nil
}

type guestFile struct {
	*sftp.File
	fsync   bool
	mapped  bool // regions is the file's data map
	regions []region
}

// NextData follows the file's data map when the guest gave one; without
// it the whole file is read (the destination still skips writing blocks
// of zeros).
func (f *guestFile) NextData(pos, size int64) (start, end int64, ok bool) {
	if f.mapped {
		return nextRegion(f.regions, pos)
	}
	return pos, size, pos < size
}

// Sync flushes the file in the guest when the server can
// (fsync@openssh.com).
func (f *guestFile) Sync() error {
	if !f.fsync {
		return nil
	}
	return f.File.Sync()
}
