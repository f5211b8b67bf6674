package guestcopy

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/sftp"
)

// node is one source entry, listed before anything is copied so that the
// total size is known.
type node struct {
	path string // on the source side
	info fs.FileInfo
	link string // a symbolic link's target
	kids []*node
}

// walk lists the source p: its own entry followed (Stat) or not (Lstat),
// and with Recursive, everything under it. Entries that cannot be copied
// (devices, FIFOs, sockets) are left out and reported through skip.
func (c *copier) walk(ctx context.Context, p string, follow bool) (*node, error) {
	stat := c.src.Lstat
	if follow {
		stat = c.src.Stat
	}
	fi, err := stat(p)
	if err != nil {
		return nil, c.srcErr("reading", p, err)
	}
	n := &node{path: p, info: fi}
	if fi.IsDir() && !c.o.Recursive {
		return nil, &Error{Op: "copying", Guest: c.src.guest(), Path: p, Err: ErrIsDir}
	}
	return n, c.fill(ctx, n)
}

func (c *copier) fill(ctx context.Context, n *node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch mode := n.info.Mode(); {
	case mode.IsRegular():
		c.total += n.info.Size()
	case mode&fs.ModeSymlink != 0:
		link, err := c.src.Readlink(n.path)
		if err != nil {
			return c.srcErr("reading the link", n.path, err)
		}
		n.link = link
	case mode.IsDir():
		infos, err := c.src.ReadDir(n.path)
		if err != nil {
			return c.srcErr("listing", n.path, err)
		}
		for _, fi := range infos {
			name := fi.Name()
			if !validName(name) {
				return &Error{Op: "listing", Guest: c.src.guest(), Path: n.path, Err: fmt.Errorf("invalid entry name %q", name)}
			}
			kid := &node{path: path.Join(n.path, name), info: fi}
			if !copyable(fi.Mode()) {
				c.skipped = append(c.skipped, &Error{Op: "copying", Guest: c.src.guest(), Path: kid.path, Err: ErrUnsupported})
				continue
			}
			if err := c.fill(ctx, kid); err != nil {
				return err
			}
			n.kids = append(n.kids, kid)
		}
	default:
		return &Error{Op: "copying", Guest: c.src.guest(), Path: n.path, Err: ErrUnsupported}
	}
	return nil
}

func copyable(m fs.FileMode) bool {
	return m.IsRegular() || m.IsDir() || m&fs.ModeSymlink != 0
}

// validName refuses directory entries that are not one plain name (a
// server could list anything).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// keptMode is what a copy keeps of a mode: the permission bits and the
// sticky bit. setuid and setgid are dropped: a copy belongs to whoever
// copies (root in the guest), and a guest must not be able to plant a
// setuid file on the host.
func keptMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSticky)
}

// times returns a file's access and modification times.
func times(fi fs.FileInfo) (atime, mtime time.Time) {
	mtime = fi.ModTime()
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t:
		return time.Unix(st.Atim.Sec, st.Atim.Nsec), mtime
	case *sftp.FileStat:
		return time.Unix(int64(st.Atime), 0), mtime
	}
	return mtime, mtime
}
