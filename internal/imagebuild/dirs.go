package imagebuild

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const syscallENOSPC = syscall.ENOSPC

// maxOpenDirs bounds the directory descriptor cache.
const maxOpenDirs = 256

// dir returns an open descriptor of the directory rel (relative to the
// root, "" or "." for the root), creating missing directories (0755,
// root-owned) like a container runtime does. Symlinks on the way are
// followed only while they stay inside the root.
func (a *applier) dir(rel string) (*os.File, error) {
	if rel == "" {
		rel = "."
	}
	if f, ok := a.dirs[rel]; ok {
		return f, nil
	}
	f, err := a.root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		if err = a.mkdirAll(rel); err == nil {
			f, err = a.root.Open(rel)
		}
	}
	if err != nil {
		return nil, rootErr(rel, err)
	}
	if st, err := f.Stat(); err != nil || !st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%q is not a directory", rel)
	}
	if len(a.dirs) >= maxOpenDirs {
		a.dropDirs()
	}
	a.dirs[rel] = f
	return f, nil
}

// mkdirAll creates rel and its missing parents, recording them as written
// by the current layer.
func (a *applier) mkdirAll(rel string) error {
	if parent := path.Dir(rel); parent != "." {
		if _, err := a.root.Lstat(parent); errors.Is(err, fs.ErrNotExist) {
			if err := a.mkdirAll(parent); err != nil {
				return err
			}
		}
	}
	if err := a.root.Mkdir(rel, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	a.layer[rel] = true
	return nil
}

// lookupParent returns the open parent directory of rel and rel's last
// element, without creating anything.
func (a *applier) lookupParent(rel string) (*os.File, string, error) {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if f, ok := a.dirs[dir]; ok {
		return f, base, nil
	}
	if _, err := a.root.Stat(dir); err != nil {
		return nil, "", rootErr(dir, err)
	}
	p, err := a.dir(dir)
	return p, base, err
}

func (a *applier) dropDirs() {
	for k, f := range a.dirs {
		f.Close()
		delete(a.dirs, k)
	}
}

// removeAt removes the existing entry base in pfd (rel is its path), a
// whole tree if it is a directory.
func (a *applier) removeAt(rel string, pfd int, base string, mode uint32) error {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// Cached descriptors may point into what goes away.
		a.dropDirs()
		if err := a.root.RemoveAll(rel); err != nil {
			return err
		}
		a.forget(rel)
		return nil
	case unix.S_IFLNK:
		err := unix.Unlinkat(pfd, base, 0)
		a.dropDirs() // some may have been reached through the symlink
		a.fix.forget(rel)
		return err
	}
	a.fix.forget(rel)
	return unix.Unlinkat(pfd, base, 0)
}

// remove deletes rel (a whiteout); a missing path is fine.
func (a *applier) remove(rel string) error {
	if rel == "" || rel == "." {
		return nil
	}
	p, base, err := a.lookupParent(rel)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(int(p.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		a.fix.forget(rel) // perhaps a device node only recorded
		return nil
	}
	return a.removeAt(rel, int(p.Fd()), base, st.Mode)
}

// opaque empties dir of everything lower layers put there, keeping what
// the current layer wrote.
func (a *applier) opaque(dir string) error {
	if dir == "" {
		dir = "."
	}
	if _, err := a.dir(dir); err != nil {
		return err
	}
	a.layer[dir] = true
	for p := range a.fix {
		if strings.HasPrefix(p, dir+"/") && !a.layer[p] {
			delete(a.fix, p) // device nodes recorded by lower layers
		}
	}
	return a.sweep(dir)
}

func (a *applier) sweep(dir string) error {
	f, err := a.root.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		rel := path.Join(dir, n)
		if !a.layer[rel] {
			if err := a.remove(rel); err != nil {
				return err
			}
			continue
		}
		if st, err := a.root.Lstat(rel); err == nil && st.IsDir() {
			if err := a.sweep(rel); err != nil {
				return err
			}
		}
	}
	return nil
}

// forget drops what was recorded for rel and everything under it.
func (a *applier) forget(rel string) {
	for k := range a.times {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			delete(a.times, k)
		}
	}
	for k := range a.modes {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			delete(a.modes, k)
		}
	}
	a.fix.forget(rel)
}

// rootErr turns os.Root's refusal to leave the root into a hostile-layer
// error naming the path.
func rootErr(rel string, err error) error {
	if err != nil && strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("layer writes into %q through a symlink that leaves the image: %w", rel, errHostile)
	}
	return err
}
