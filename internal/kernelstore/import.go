package kernelstore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/archive"
	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/paths"
)

// ImportOptions describe a kernel imported from a local directory.
type ImportOptions struct {
	Distro        string
	Arch          string
	KernelVersion string // "" reads it from vmlinux's Linux version string
	Description   string
	Force         bool // replace an installed kernel of the same name
}

// Import copies vmlinux (required), initrd.img and modules/ (optional)
// from dir into the store under name. The files pass through the same
// checks as a downloaded bundle, so an import is exactly what a bundle
// built from it would install.
func (s *Store) Import(ctx context.Context, name, dir string, opts ImportOptions) (*Manifest, error) {
	if err := paths.ValidateName("kernel", name); err != nil {
		return nil, err
	}
	if opts.Distro == "" {
		return nil, ErrNoDistro
	}
	a, err := arch.Canonical(opts.Arch)
	if err != nil {
		return nil, fmt.Errorf("importing kernel %q: %w", name, err)
	}
	opts.Arch = a
	vmlinux := filepath.Join(dir, "vmlinux")
	fi, err := os.Stat(vmlinux)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &NoVmlinuxError{Name: name, Dir: dir}
	case err != nil:
		return nil, fmt.Errorf("importing kernel %q: %w", name, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("importing kernel %q: %s is not a regular file", name, vmlinux)
	}
	if err := arch.CheckKernel(vmlinux, opts.Arch); err != nil {
		return nil, &ImportArchError{Name: name, Err: err}
	}
	version := opts.KernelVersion
	if version == "" {
		if version, err = ReadKernelVersion(filepath.Join(dir, "vmlinux")); err != nil {
			return nil, &VersionError{Name: name, Err: err}
		}
	}

	lock, err := lockfile.Acquire(ctx, s.lockPath(name), nil)
	if err != nil {
		return nil, fmt.Errorf("importing kernel %q: %w", name, err)
	}
	defer lock.Unlock()
	s.cleanLeftovers(name)
	if _, err := s.Get(name); err == nil && !opts.Force {
		return nil, &InstalledError{Name: name}
	}
	st, err := s.newStage(name)
	if err != nil {
		return nil, err
	}
	defer st.remove()
	files, err := copyBundle(ctx, dir, st.dir)
	if err != nil {
		return nil, s.diskFull(fmt.Errorf("importing kernel %q from %s: %w", name, dir, err))
	}
	m := &Manifest{
		Name: name, Distro: opts.Distro, Arch: opts.Arch, KernelVersion: version,
		Description: opts.Description, Source: SourceImport,
		InstalledAt: time.Now().UTC().Truncate(time.Second), Files: files,
	}
	if err := s.commit(st, name, m); err != nil {
		return nil, err
	}
	return m, nil
}

// copyBundle streams the bundle roots of src as a plain tar through the
// bundle extractor (archive.ExtractTar) into dst. Only vmlinux, initrd.img
// and modules/ are taken.
func copyBundle(ctx context.Context, src, dst string) ([]archive.File, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(packBundle(src, pw)) }()
	files, err := archive.ExtractTar(ctx, pr, dst, archive.DefaultLimits())
	pr.CloseWithError(errors.New("extraction finished"))
	return files, err
}

// packBundle writes src's bundle roots as a tar to w.
func packBundle(src string, w io.Writer) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, 256<<10)
	for _, root := range []string{"vmlinux", "initrd.img", "modules"} {
		if _, err := os.Lstat(filepath.Join(src, root)); errors.Is(err, fs.ErrNotExist) && root != "vmlinux" {
			continue // optional
		}
		err := filepath.WalkDir(filepath.Join(src, root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			var link string
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(rel)
			if d.IsDir() {
				hdr.Name += "/"
			}
			hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = "", "", 0, 0
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				return copyFile(tw, p, buf)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyFile copies the regular file at p to w through buf. It reads the
// file through a bare descriptor: opening an *os.File costs five more
// system calls (fcntl and epoll_ctl, trying to make it pollable), and a
// modules/ tree has thousands of files.
func copyFile(w io.Writer, p string, buf []byte) error {
	var fd int
	var err error
	for {
		if fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer func() { _ = unix.Close(fd) }()
	if _, err := io.CopyBuffer(w, fdReader(fd), buf); err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	return nil
}

// fdReader reads a file descriptor.
type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
