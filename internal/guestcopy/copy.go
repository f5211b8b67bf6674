package guestcopy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/thaloco/banger/internal/diskcopy"
)

// bufSize is how much of a file is read, then written, at a time.
const bufSize = 1 << 20

// stagePrefix starts the name of the private directory a copy writes into
// before renaming each entry into place. One left by a killed banger is
// safe to delete.
const stagePrefix = ".banger-cp-"

var errShrank = errors.New("the file shrank while it was copied")

// copier copies from one side to the other.
type copier struct {
	src     source
	dst     dest
	o       Options
	prog    Progress
	buf     []byte
	total   int64   // bytes of regular files listed
	skipped []error // entries left out of directories
}

// item is a source and the name it gets in the destination directory.
type item struct {
	n    *node
	name string
}

// target says where the sources go: into dir, under names.
type target struct {
	dir   string
	names []string
}

// run lists srcs, then copies them as resolve places them. A failing
// source does not stop the others (as with cp), except for failures that
// would fail them too: cancellation, a full disk, a lost connection.
func (c *copier) run(ctx context.Context, srcs []string, resolve func(nodes []*node) (target, error), open func(dir string) (dest, string, func(), error)) error {
	var errs []error
	nodes := make([]*node, len(srcs))
	for i, s := range srcs {
		n, err := c.walk(ctx, s, !c.o.Recursive)
		if err != nil {
			if fatal(err) {
				return err
			}
			errs = append(errs, err)
			continue
		}
		nodes[i] = n
	}
	if c.o.Progress != nil {
		c.prog = c.o.Progress(c.total)
	}
	t, err := resolve(nodes)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var items []item
	for i, n := range nodes {
		if n != nil {
			items = append(items, item{n: n, name: t.names[i]})
		}
	}
	if len(items) > 0 {
		d, dir, closeDest, err := open(t.dir)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		c.dst = d
		c.buf = make([]byte, bufSize)
		err = c.into(ctx, dir, items, true)
		closeDest()
		errs = append(errs, err)
	}
	return errors.Join(append(errs, c.skipped...)...)
}

// resolveTarget applies cp's rules: into dst when it is a directory (as
// base names), else dst is the one source's new name. Several sources need
// a directory. dst ending in "/" must be a directory, unless it is the new
// name of a directory.
func resolveTarget(srcs []string, nodes []*node, dst string, guest bool, stat func(string) (fs.FileInfo, error), classify func(error) error) (target, error) {
	clean := path.Clean(dst)
	fi, err := stat(clean)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return target{}, &Error{Op: "reading", Guest: guest, Path: dst, Err: classify(err)}
	}
	t := target{names: make([]string, len(srcs))}
	switch {
	case err == nil && fi.IsDir():
		t.dir = clean
		for i, s := range srcs {
			name, err := baseName(s)
			if err != nil {
				return target{}, &Error{Op: "copying", Guest: !guest, Path: s, Err: err}
			}
			t.names[i] = name
		}
	case len(srcs) > 1:
		return target{}, &Error{Op: "copying several sources into", Guest: guest, Path: dst, Err: ErrNotDir}
	case strings.HasSuffix(dst, "/") && (err == nil || nodes[0] == nil || !nodes[0].info.IsDir()):
		return target{}, &Error{Op: "copying into", Guest: guest, Path: dst, Err: ErrNotDir}
	default:
		t.dir, t.names[0] = path.Dir(clean), path.Base(clean)
	}
	return t, nil
}

// baseName is the name a source gets inside the destination directory:
// "." for "/" or "." (its contents go into the directory itself).
func baseName(src string) (string, error) {
	switch b := path.Base(src); b {
	case "/", ".":
		return ".", nil
	case "..":
		return "", errors.New(`a source ending in ".." has no name to copy it to`)
	default:
		return b, nil
	}
}

// into places items in the existing directory dir. Each is built under
// a private staging directory in dir and then renamed into place, so
// nothing half-written ever carries its final name. With keepGoing, an
// item that fails does not stop the others.
func (c *copier) into(ctx context.Context, dir string, items []item, keepGoing bool) error {
	stage := path.Join(dir, stagePrefix+randomHex())
	if err := c.dst.Mkdir(stage); err != nil {
		return c.dstErr("writing into", stage, dir, err)
	}
	defer func() { _ = c.dst.RemoveAll(stage) }()
	var errs []error
	for _, it := range items {
		err := c.place(ctx, dir, stage, it)
		if err != nil {
			errs = append(errs, err)
			if !keepGoing || fatal(err) {
				break
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := c.dst.SyncDir(dir); err != nil {
		return c.dstErr("syncing", dir, dir, err)
	}
	return nil
}

// place copies one item into dir: a directory merges into an existing
// one; anything else replaces what has its name (but not a directory).
func (c *copier) place(ctx context.Context, dir, stage string, it item) error {
	final := path.Join(dir, it.name)
	ex, err := c.dst.Lstat(final)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.dstErr("reading", final, final, err)
	}
	exists := err == nil
	switch {
	case it.n.info.IsDir() && exists && ex.IsDir():
		return c.merge(ctx, it.n, final)
	case it.n.info.IsDir() && exists:
		return &Error{Op: "copying to", Guest: c.dst.guest(), Path: c.dst.Show(final), Err: ErrOverwriteNonDir}
	case exists && ex.IsDir():
		return &Error{Op: "copying to", Guest: c.dst.guest(), Path: c.dst.Show(final), Err: ErrOverwriteDir}
	}
	tmp := path.Join(stage, it.name)
	if err := c.build(ctx, it.n, tmp, final); err != nil {
		return err
	}
	if err := c.dst.Rename(tmp, final); err != nil {
		return c.dstErr("renaming into", tmp, final, err)
	}
	return nil
}

// merge copies a directory's entries into the existing directory final,
// then gives it the source's mode and times.
func (c *copier) merge(ctx context.Context, n *node, final string) error {
	if len(n.kids) > 0 {
		items := make([]item, len(n.kids))
		for i, k := range n.kids {
			items[i] = item{n: k, name: path.Base(k.path)}
		}
		if err := c.into(ctx, final, items, false); err != nil {
			return err
		}
	}
	return c.finish(n.info, final, final)
}

// build creates n at name, which does not exist yet; shown is where it
// will end up, for messages.
func (c *copier) build(ctx context.Context, n *node, name, shown string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch mode := n.info.Mode(); {
	case mode.IsDir():
		if err := c.dst.Mkdir(name); err != nil {
			return c.dstErr("creating", name, shown, err)
		}
		for _, k := range n.kids {
			base := path.Base(k.path)
			if err := c.build(ctx, k, path.Join(name, base), path.Join(shown, base)); err != nil {
				return err
			}
		}
		return c.finish(n.info, name, shown)
	case mode&fs.ModeSymlink != 0:
		if err := c.dst.Symlink(n.link, name); err != nil {
			return c.dstErr("creating the link", name, shown, err)
		}
		return nil
	default:
		return c.copyFile(ctx, n, name, shown)
	}
}

// finish gives name the source's mode and times (after its entries are
// written, which change a directory's mtime).
func (c *copier) finish(fi fs.FileInfo, name, shown string) error {
	if err := c.dst.Chmod(name, keptMode(fi.Mode())); err != nil {
		return c.dstErr("setting the mode of", name, shown, err)
	}
	atime, mtime := times(fi)
	if err := c.dst.Chtimes(name, atime, mtime); err != nil {
		return c.dstErr("setting the times of", name, shown, err)
	}
	return nil
}

// copyFile copies the regular file n to the new file name: the data
// regions the source knows of, less blocks of zeros, which stay holes.
func (c *copier) copyFile(ctx context.Context, n *node, name, shown string) error {
	in, err := c.src.Open(ctx, n.path)
	if err != nil {
		return c.srcErr("opening", n.path, err)
	}
	defer func() { _ = in.Close() }()
	fi, err := in.Stat()
	if err != nil {
		return c.srcErr("reading", n.path, err)
	}
	size := fi.Size()
	out, err := c.dst.Create(name)
	if err != nil {
		return c.dstErr("creating", name, shown, err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = out.Close()
		}
	}()
	if err := out.Truncate(size); err != nil {
		return c.dstErr("writing", name, shown, err)
	}
	var pos int64
	for pos < size {
		start, end, ok := in.NextData(pos, size)
		if !ok {
			break
		}
		c.add(start - pos)
		for off := start; off < end; {
			if err := ctx.Err(); err != nil {
				return err
			}
			m := min(end-off, int64(len(c.buf)))
			k, err := in.ReadAt(c.buf[:m], off)
			if int64(k) < m {
				if err == nil || errors.Is(err, io.EOF) {
					err = errShrank
				}
				return c.srcErr("reading", n.path, err)
			}
			if err := diskcopy.WriteNonZero(out, c.buf[:m], off); err != nil {
				return c.dstErr("writing", name, shown, err)
			}
			off += m
			c.add(m)
		}
		pos = end
	}
	c.add(size - pos)
	if err := out.Sync(); err != nil {
		return c.dstErr("syncing", name, shown, err)
	}
	closed = true
	if err := out.Close(); err != nil {
		return c.dstErr("writing", name, shown, err)
	}
	return c.finish(fi, name, shown)
}

func (c *copier) add(n int64) {
	if c.prog != nil && n > 0 {
		c.prog.Add(n)
	}
}

// srcErr names the source path p in err, unless err is cancellation.
func (c *copier) srcErr(op, p string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{Op: op, Guest: c.src.guest(), Path: p, Err: c.src.classify(err, p)}
}

// dstErr names shown (where name is going) in an error about name.
func (c *copier) dstErr(op, name, shown string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{Op: op, Guest: c.dst.guest(), Path: c.dst.Show(shown), Err: c.dst.classify(err, name)}
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
