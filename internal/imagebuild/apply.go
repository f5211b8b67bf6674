package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteout markers in OCI layers (the AUFS convention).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh."
)

// applier writes layers, base first, into a root directory the way a
// container runtime stacks them: later entries replace earlier ones,
// whiteouts delete, opaque markers hide what lower layers put in a
// directory. Every path is resolved through an os.Root, so no entry, link
// or symlink can make it write outside the root.
type applier struct {
	root   *os.Root
	dirs   map[string]*os.File // open directories by relative path ("." is the root)
	layer  map[string]bool     // paths the current layer wrote
	times  map[string]time.Time
	warn   func(string)
	warned map[string]bool
	buf    []byte // copy buffer for file contents
	zero   []byte // as long as buf, all zeros

	// rootless: the builder is not root, so owners, device nodes and
	// privileged xattrs go to fix (applied to the ext4 image later) and
	// directories stay writable until Close gives them their modes.
	rootless bool
	fix      fixups
	modes    map[string]uint32
}

func newApplier(dir string, rootless bool, warn func(string)) (*applier, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &applier{root: root, dirs: map[string]*os.File{}, times: map[string]time.Time{}, warn: warn, warned: map[string]bool{},
		rootless: rootless, fix: fixups{}, modes: map[string]uint32{}}, nil
}

// Close sets directory times (and, rootless, modes) and releases the root.
func (a *applier) Close() error {
	for _, n := range deepestFirst(a.times) {
		if p, base, err := a.lookupParent(n); err == nil {
			t := a.times[n]
			ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
			_ = unix.UtimesNanoAt(int(p.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	a.dropDirs()
	for _, n := range deepestFirst(a.modes) {
		if st, err := a.root.Lstat(n); err == nil && st.IsDir() {
			_ = a.root.Chmod(n, fs.FileMode(a.modes[n]&0o777)|unixModeBits(a.modes[n]))
		}
	}
	return a.root.Close()
}

// deepestFirst returns m's keys, longest paths first.
func deepestFirst[V any](m map[string]V) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	return names
}

// unixModeBits converts setuid/setgid/sticky bits to fs.FileMode.
func unixModeBits(m uint32) fs.FileMode {
	var out fs.FileMode
	if m&unix.S_ISUID != 0 {
		out |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// errHostile marks layer entries that try to leave the root.
var errHostile = errors.New("the image is malformed or hostile")

// Apply writes one layer's tar stream.
func (a *applier) Apply(ctx context.Context, r io.Reader) error {
	a.layer = map[string]bool{}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading layer: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			if errors.Is(err, errHostile) || errors.Is(err, syscallENOSPC) {
				return err
			}
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
}

// clean turns a tar name into a path relative to the root ("" for the
// root itself), refusing names that climb out of it. A leading "/" means
// the image root, as container runtimes read it.
func clean(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	if n == "" || path.Clean(n) == "." {
		return "", nil
	}
	if !filepath.IsLocal(n) {
		return "", fmt.Errorf("layer entry %q points outside the image: %w", name, errHostile)
	}
	return path.Clean(n), nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := clean(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the root itself: mkfs.ext4 owns its attributes
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case strings.Contains("/"+dir+"/", "/"+whiteoutMeta):
		return nil // inside AUFS metadata (.wh..wh.plnk/...)
	case base == whiteoutOpaque:
		return a.opaque(dir)
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // other AUFS metadata (.wh..wh.plnk, ...)
	case strings.HasPrefix(base, whiteoutPrefix):
		return a.remove(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
	}
	p, err := a.dir(dir)
	if err != nil {
		return err
	}
	pfd := int(p.Fd())
	for n := name; n != "."; n = path.Dir(n) {
		a.layer[n] = true // the entry and its parents belong to this layer
	}
	var existing unix.Stat_t
	exists := unix.Fstatat(pfd, base, &existing, unix.AT_SYMLINK_NOFOLLOW) == nil
	isDir := exists && existing.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists && (hdr.Typeflag != tar.TypeDir || !isDir) {
		if err := a.removeAt(name, pfd, base, existing.Mode); err != nil {
			return err
		}
		// Removing a directory or symlink closes cached descriptors.
		if p, err = a.dir(dir); err != nil {
			return err
		}
		pfd = int(p.Fd())
	} else if !exists {
		a.fix.forget(name) // a device node only recorded, never created
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !isDir {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return err
			}
		}
		a.times[name] = hdr.ModTime
		return a.dirMeta(name, pfd, base, hdr)
	case tar.TypeReg: // archive/tar reports the old TypeRegA as TypeReg
		return a.file(name, pfd, base, hdr, r)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
		return a.linkMeta(name, pfd, base, hdr)
	case tar.TypeLink:
		return a.hardlink(name, pfd, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(hdr.Mode) & 0o7777
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		if a.rootless && hdr.Typeflag != tar.TypeFifo {
			// Only root makes device nodes: debugfs adds it to the image.
			f := a.fixup(name)
			f.Device, f.Major, f.Minor, f.Mode = true, uint32(hdr.Devmajor), uint32(hdr.Devminor), mode
			f.UID, f.GID = hdr.Uid, hdr.Gid
			for k, v := range xattrsOf(hdr) {
				f.Xattrs[k] = v
			}
			return nil
		}
		if err := unix.Mknodat(pfd, base, mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return err
		}
		if err := a.chown(name, pfd, base, -1, hdr); err != nil {
			return err
		}
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return err
		}
		return a.linkMeta(name, pfd, base, hdr)
	default:
		a.warnOnce(fmt.Sprintf("skipped layer entries of tar type %q", string(hdr.Typeflag)))
		delete(a.layer, name)
		return nil
	}
}

// file writes a regular file and its metadata through its descriptor.
func (a *applier) file(name string, pfd int, base string, hdr *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if err := a.writeSparse(f, r); err != nil {
		return err
	}
	if err := a.chown(name, pfd, base, fd, hdr); err != nil {
		return err
	}
	// After chown, which clears setuid/setgid bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return err
	}
	a.xattrs(name, hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
	ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// chown gives the entry its owner: directly as root (through fd when it
// is >= 0), else as a fixup for the image unless the owner is root (an
// unprivileged build's files become root's in the image).
func (a *applier) chown(name string, pfd int, base string, fd int, hdr *tar.Header) error {
	if a.rootless {
		if hdr.Uid != 0 || hdr.Gid != 0 {
			f := a.fixup(name)
			f.UID, f.GID = hdr.Uid, hdr.Gid
		}
		return nil
	}
	if fd >= 0 {
		return unix.Fchown(fd, hdr.Uid, hdr.Gid)
	}
	return unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
}

func (a *applier) dirMeta(name string, pfd int, base string, hdr *tar.Header) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	if err := a.chown(name, pfd, base, fd, hdr); err != nil {
		return err
	}
	if a.rootless {
		// Stay writable for later entries; Close sets the mode.
		a.modes[name] = uint32(hdr.Mode) & 0o7777
	} else if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return err
	}
	a.xattrs(name, hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
	return nil
}

// writeSparse copies r into the new file f, leaving runs of zero blocks
// as holes (sparse files stay sparse, and a layer of zeros costs no disk).
func (a *applier) writeSparse(f *os.File, r io.Reader) error {
	const block = 4096
	if a.buf == nil {
		a.buf = make([]byte, 256<<10)
		a.zero = make([]byte, 256<<10)
	}
	var off int64
	for {
		n, err := fill(r, a.buf)
		if n > 0 {
			p := a.buf[:n]
			for i := 0; i < n; i += block {
				j := min(i+block, n)
				if bytes.Equal(p[i:j], a.zero[:j-i]) {
					continue
				}
				k := j
				for k < n && !bytes.Equal(p[k:min(k+block, n)], a.zero[:min(k+block, n)-k]) {
					k = min(k+block, n)
				}
				if _, err := f.WriteAt(p[i:k], off+int64(i)); err != nil {
					return err
				}
				i = k - block
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return f.Truncate(off)
}

// fill reads into buf until it is full or r ends (io.EOF) or fails.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// linkMeta sets the owner, xattrs and time of a symlink or special file
// without following it.
func (a *applier) linkMeta(name string, pfd int, base string, hdr *tar.Header) error {
	if err := a.chown(name, pfd, base, -1, hdr); err != nil {
		return err
	}
	// The parent is a trusted descriptor and base one component, so the
	// /proc path names exactly this entry.
	procPath := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
	a.xattrs(name, hdr, func(k string, v []byte) error { return unix.Lsetxattr(procPath, k, v, 0) })
	ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func (a *applier) hardlink(name string, pfd int, base string, hdr *tar.Header) error {
	target, err := clean(hdr.Linkname)
	if err != nil || target == "" {
		return fmt.Errorf("hard link %q points outside the image (to %q): %w", hdr.Name, hdr.Linkname, errHostile)
	}
	tdir, tbase := path.Split(target)
	tp, err := a.dir(strings.TrimSuffix(tdir, "/"))
	if err != nil {
		return err
	}
	if err := unix.Linkat(int(tp.Fd()), tbase, pfd, base, 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hard link to %q: the target is not in the image", hdr.Linkname)
		}
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	if f, ok := a.fix[target]; ok {
		a.fix[name] = f.clone() // same inode, so the same owner
	}
	return nil
}

// xattrs applies the entry's extended attributes with set; failures (a
// filesystem without that namespace) become one warning per attribute.
// Rootless, only user.* attributes of files and directories can be set
// here; the others become fixups.
func (a *applier) xattrs(name string, hdr *tar.Header, set func(string, []byte) error) {
	special := hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir
	for k, v := range xattrsOf(hdr) {
		if a.rootless && (special || !strings.HasPrefix(k, "user.")) {
			a.fixup(name).Xattrs[k] = v
			continue
		}
		if err := set(k, []byte(v)); err != nil {
			a.warnOnce(fmt.Sprintf("could not keep extended attribute %s: %v", k, err))
		}
	}
}

func xattrsOf(hdr *tar.Header) map[string]string {
	out := map[string]string{}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			out[name] = v
		}
	}
	return out
}

func (a *applier) warnOnce(msg string) {
	if !a.warned[msg] && a.warn != nil {
		a.warn(msg)
	}
	a.warned[msg] = true
}
