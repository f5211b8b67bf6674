package imagebuild

import (
	"archive/tar"
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
