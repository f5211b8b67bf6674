package guestcopy

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// source is the side files are read from.
type source interface {
	Lstat(name string) (fs.FileInfo, error)
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory, as Lstat sees each entry.
	ReadDir(name string) ([]fs.FileInfo, error)
	Readlink(name string) (string, error)
	Open(ctx context.Context, name string) (srcFile, error)
	// guest reports whether this side is the guest.
	guest() bool
	// classify turns an error about name into a sentinel when it can.
	classify(err error, name string) error
}

type srcFile interface {
	io.ReaderAt
	Close() error
	Stat() (fs.FileInfo, error)
	// NextData is the next region holding data, [start, end), at or after
	// pos and before size; ok is false when only a hole remains. A side
	// that cannot tell reports the rest of the file as data.
	NextData(pos, size int64) (start, end int64, ok bool)
}

// dest is the side files are written to. Names are relative to where the
// side was opened (the host) or paths as the guest's SFTP server takes
// them.
type dest interface {
	Lstat(name string) (fs.FileInfo, error)
	// Mkdir makes a directory only its owner can use.
	Mkdir(name string) error
	// Create makes a new, empty file (it must not exist) only its owner
	// can use.
	Create(name string) (dstFile, error)
	Symlink(target, name string) error
	// Rename moves oldname to newname, replacing a file there.
	Rename(oldname, newname string) error
	RemoveAll(name string) error
	Chmod(name string, mode fs.FileMode) error
	Chtimes(name string, atime, mtime time.Time) error
	// SyncDir makes a directory's entries durable where the side can.
	SyncDir(name string) error
	// Show is name as the user knows it (for messages).
	Show(name string) string
	guest() bool
	classify(err error, name string) error
}

type dstFile interface {
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}
