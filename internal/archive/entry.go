package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// extractor holds the state of one ExtractBundle or ExtractTar call.
type extractor struct {
	ctx      context.Context
	rootFD   int         // the destination directory
	umask    fs.FileMode // the process's, when the extraction started
	lim      Limits
	zstd     bool              // the tar comes out of the zstd decoder (ExtractBundle)
	entries  map[string]*File  // every path written, by cleaned name
	implicit map[string]bool   // directories created for a deeper entry, without their own
	links    map[string]string // symlink path -> target
	lastDir  string            // the last parent directory verified
	written  int64             // file bytes written
	chunks   chan *chunk       // free chunks for streaming large files, allocated on first use
	dirs     map[string]int    // directory descriptors, by name (see dirs.go)
	w        *writers
}

// add validates one tar entry and writes it.
func (x *extractor) add(h *tar.Header, body io.Reader) error {
	name, err := cleanName(h)
	if err != nil || name == "" {
		return err
	}
	if err := checkType(h); err != nil {
		return err
	}
	if err := checkLayout(h.Name, name, h.Typeflag); err != nil {
		return err
	}
	if prev, ok := x.entries[name]; ok {
		if h.Typeflag == tar.TypeDir && x.implicit[name] {
			delete(x.implicit, name)
			return x.mkdir(name, h.Mode, prev)
		}
		return unsafeEntry(h.Name, fmt.Sprintf("duplicate entry: it would replace an earlier %s", kindOf(prev)), "")
	}
	if err := x.parents(h.Name, name); err != nil {
		return err
	}
	if err := x.count(h.Name); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return x.mkdir(name, h.Mode, nil)
	case tar.TypeSymlink:
		return x.symlink(h, name)
	case tar.TypeReg:
		return x.file(h, name, body)
	}
	return nil
}

// mkdir creates directory name, or only sets its mode when f, the entry of
// an implicit directory, is given. The umask does not change the mode.
func (x *extractor) mkdir(name string, mode int64, f *File) error {
	perm := fs.FileMode(mode)&fs.ModePerm&^0o022 | 0o700 // never group/other-writable
	want := (fs.ModeDir | perm).String()
	switch {
	case f == nil:
		if err := x.makeDir(name, perm); err != nil {
			return err
		}
		f = &File{Path: name}
		x.entries[name] = f
	case f.Mode == want:
		return nil // the implicit directory has that mode already
	default:
		if err := x.chmodDir(name, perm); err != nil {
			return err
		}
	}
	f.Mode = want
	return nil
}

func (x *extractor) count(raw string) error {
	if len(x.entries) >= x.lim.MaxEntries {
		return &limitError{msg: fmt.Sprintf("bundle entry %q: more than %d entries (hint: raise Limits.MaxEntries for a larger bundle)", raw, x.lim.MaxEntries)}
	}
	return nil
}

// parents checks every parent of name is a directory (an archive entry or
// one created here), never a symlink or a file, and creates missing ones.
func (x *extractor) parents(raw, name string) error {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return nil
	}
	dir := name[:i]
	if dir == x.lastDir {
		return nil
	}
	for j := 0; j <= len(dir); j++ {
		if j < len(dir) && dir[j] != '/' {
			continue
		}
		p := dir[:j]
		f, ok := x.entries[p]
		switch {
		case !ok:
			if err := x.count(raw); err != nil {
				return err
			}
			if err := x.mkdir(p, 0o755, nil); err != nil {
				return err
			}
			x.implicit[p] = true
		case f.Mode[0] == 'L':
			return unsafeEntry(raw, fmt.Sprintf("parent %q is a symlink: writing through symlinks is not allowed", p), "")
		case f.Mode[0] != 'd':
			return unsafeEntry(raw, fmt.Sprintf("parent %q is not a directory", p), "")
		}
	}
	x.lastDir = dir
	return nil
}

func (x *extractor) symlink(h *tar.Header, name string) error {
	target := h.Linkname
	switch {
	case target == "":
		return unsafeEntry(h.Name, "symlink with an empty target", "")
	case len(target) > maxNameLen:
		return unsafeEntry(h.Name, fmt.Sprintf("symlink target longer than %d bytes", maxNameLen), "")
	case strings.IndexByte(target, 0) >= 0:
		return unsafeEntry(h.Name, "symlink target contains a NUL byte", "")
	case strings.HasPrefix(target, "/"):
		return unsafeEntry(h.Name, fmt.Sprintf("absolute symlink target %q", target), "make it relative to the link's directory, inside the bundle")
	case len(x.links) >= maxSymlinks:
		return &limitError{msg: fmt.Sprintf("bundle entry %q: more than %d symlinks", h.Name, maxSymlinks)}
	}
	x.links[name] = target
	if err := checkSymlink(x.links, name); err != nil {
		return symlinkError(h.Name, target, err)
	}
	dir, base, owned, err := x.place(name)
	if err != nil {
		return err
	}
	if owned {
		defer func() { _ = unix.Close(dir) }()
	}
	if err := ignoringEINTR(func() error { return unix.Symlinkat(target, dir, base) }); err != nil {
		return fmt.Errorf("creating symlink %q: %w", name, err)
	}
	x.entries[name] = &File{Path: name, Mode: (fs.ModeSymlink | fs.ModePerm).String(), LinkTarget: target}
	return nil
}

func symlinkError(name, target string, err error) error {
	if errors.Is(err, errLoop) {
		return unsafeEntry(name, fmt.Sprintf("symlink to %q: %v", target, err), "")
	}
	return unsafeEntry(name, fmt.Sprintf("symlink target %q %v", target, err), "symlink targets must resolve inside the bundle, from the link's own directory")
}

func kindOf(f *File) string {
	switch f.Mode[0] {
	case 'd':
		return "directory"
	case 'L':
		return "symlink"
	}
	return "file"
}
