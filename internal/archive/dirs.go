package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The extractor works the way os.Root does inside, without its cost per
// call: it creates every directory itself and keeps a descriptor of each,
// opened from its parent's with O_NOFOLLOW, and creates each entry with one
// *at system call naming a single component (checked by cleanName: no
// "/", never "." or "..") in such a descriptor. Files are created with
// O_EXCL and directories with mkdirat, neither of which follows a symlink,
// and no directory is ever opened through one, so nothing is written
// outside the destination. Raw descriptors, not *os.File, because an
// *os.File costs five more system calls per file (fcntl and epoll_ctl,
// trying to make it pollable), more than creating the file itself.

// maxDirFDs bounds the directory descriptors kept open (a distribution's
// modules tree has about 600 directories); a directory past it is opened
// from the destination, one component at a time, for each entry in it.
const maxDirFDs = 1024

// dirFD returns a descriptor of directory dir ("" is the destination) and
// whether the caller must close it.
func (x *extractor) dirFD(dir string) (int, bool, error) {
	if fd, ok := x.dirs[dir]; ok {
		return fd, false, nil
	}
	fd := x.rootFD
	for c := range strings.SplitSeq(dir, "/") {
		next, err := openDir(fd, c)
		if fd != x.rootFD {
			_ = unix.Close(fd)
		}
		if err != nil {
			return -1, false, fmt.Errorf("opening directory %q: %w", dir, err)
		}
		fd = next
	}
	return fd, true, nil
}

// place returns the descriptor of the directory to create name in, its
// name there and whether the caller must close the descriptor.
func (x *extractor) place(name string) (int, string, bool, error) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return x.rootFD, name, false, nil
	}
	fd, owned, err := x.dirFD(name[:i])
	return fd, name[i+1:], owned, err
}

func (x *extractor) closeDirs() {
	for _, fd := range x.dirs {
		_ = unix.Close(fd) // a directory: closing it cannot lose data
	}
	clear(x.dirs)
}

// makeDir creates directory name with mode perm and keeps a descriptor of
// it while there is room.
func (x *extractor) makeDir(name string, perm fs.FileMode) error {
	pfd, base, owned, err := x.place(name)
	if err != nil {
		return err
	}
	if owned {
		defer func() { _ = unix.Close(pfd) }()
	}
	if err := ignoringEINTR(func() error { return unix.Mkdirat(pfd, base, uint32(perm)) }); err != nil {
		return fmt.Errorf("creating directory %q: %w", name, err)
	}
	if perm&x.umask == 0 && len(x.dirs) >= maxDirFDs {
		return nil // nothing to chmod, no room to keep it
	}
	fd, err := openDir(pfd, base)
	if err != nil {
		return fmt.Errorf("opening directory %q: %w", name, err)
	}
	if perm&x.umask != 0 {
		if err := fchmod(fd, perm); err != nil {
			_ = unix.Close(fd)
			return fmt.Errorf("setting mode of %q: %w", name, err)
		}
	}
	if len(x.dirs) >= maxDirFDs {
		_ = unix.Close(fd)
		return nil
	}
	x.dirs[name] = fd
	return nil
}

// chmodDir sets the mode of an existing directory.
func (x *extractor) chmodDir(name string, perm fs.FileMode) error {
	fd, owned, err := x.dirFD(name)
	if err != nil {
		return err
	}
	if owned {
		defer func() { _ = unix.Close(fd) }()
	}
	if err := fchmod(fd, perm); err != nil {
		return fmt.Errorf("setting mode of %q: %w", name, err)
	}
	return nil
}

func openDir(dirfd int, name string) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}

func fchmod(fd int, perm fs.FileMode) error {
	return ignoringEINTR(func() error { return unix.Fchmod(fd, uint32(perm)) })
}

// ignoringEINTR retries f while a signal interrupts it (Go's runtime sends
// them for preemption; local file systems do not return EINTR, FUSE and
// network ones may).
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// readUmask returns the process's umask, read from /proc/self/status
// (reading it with umask(2) would change it for a moment under the other
// goroutines): files and directories are created with their final mode,
// and chmodded only when the umask takes bits from it. When it cannot be
// read, every bit counts as masked, so every mode is set with chmod.
func readUmask() fs.FileMode {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return fs.ModePerm
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Umask:")); ok {
			if m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32); err == nil {
				return fs.FileMode(m) & fs.ModePerm
			}
		}
	}
	return fs.ModePerm
}
