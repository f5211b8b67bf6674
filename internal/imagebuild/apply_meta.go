package imagebuild

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

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
