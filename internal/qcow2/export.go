package qcow2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/childproc"
)

// StorageDaemon is the program Export runs, looked up on PATH (Debian's
// qemu-system-common, which every QEMU install has).
const StorageDaemon = "qemu-storage-daemon"

// exportTimeout bounds the wait for the export to appear, and for the
// daemon to exit once asked to.
const exportTimeout = 10 * time.Second

// CheckExport reports whether Export can work here: qemu-storage-daemon
// is installed and FUSE is usable (/dev/fuse opens; without root, a mount
// also needs fusermount3).
func CheckExport() error {
	if _, err := exec.LookPath(StorageDaemon); err != nil {
		return fmt.Errorf("%s not found (hint: install the qemu-system-common package)", StorageDaemon)
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("FUSE is not usable here: %w (hint: load the fuse module, or give the container /dev/fuse)", err)
	}
	f.Close()
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return errors.New("fusermount3 not found: FUSE mounts without root need it (hint: install the fuse3 package)")
		}
	}
	return nil
}

// Export is a qcow2 file served as a raw file at Path by
// qemu-storage-daemon, until Close. Reads of Path see what the guest
// would; writes go into the qcow2 file, never into its backing file.
type Export struct {
	Path string

	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{} // closed when the daemon has exited
	err    error         // its exit status, once done is closed
}

// ExportRaw serves the qcow2 file image at mountpoint, a file it creates
// (FUSE mounts the export over it), and returns once the export is up.
// The daemon dies with banger; a daemon killed that way leaves the mount
// behind, which Unmount removes.
func ExportRaw(ctx context.Context, image, mountpoint string) (*Export, error) {
	if err := CheckExport(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(mountpoint, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("exporting %s: %w", image, err)
	}
	f.Close()
	args, err := daemonArgs(image, mountpoint)
	if err != nil {
		return nil, err
	}
	// The daemon is stopped by Close, not by ctx: killing it would leave
	// the mount behind.
	cmd := childproc.Command(context.WithoutCancel(ctx), StorageDaemon, args...)
	e := &Export{Path: mountpoint, cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
	if err := cmd.Start(); err != nil {
		os.Remove(mountpoint)
		return nil, &ExportError{Image: image, Err: err}
	}
	go func() {
		e.err = cmd.Wait()
		close(e.done)
	}()
	if err := e.waitMounted(ctx); err != nil {
		_ = e.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("exporting %s: %w", image, err)
		}
		return nil, &ExportError{Image: image, Err: err}
	}
	return e, nil
}

// ExportError is an export that could not be set up: the daemon did not
// start, or exited or hung before the export appeared (as on hosts whose
// FUSE mounts fail).
type ExportError struct {
	Image string
	Err   error
}

func (e *ExportError) Error() string {
	return fmt.Sprintf("exporting %s with %s: %v", e.Image, StorageDaemon, e.Err)
}

func (e *ExportError) Unwrap() error { return e.Err }

// daemonArgs are qemu-storage-daemon's arguments: the qcow2 node (zeros
// written become zero clusters, discards free clusters) exported writable
// over FUSE to the mounting user only. JSON needs no escaping of commas
// in paths.
func daemonArgs(image, mountpoint string) ([]string, error) {
	var args []string
	for _, o := range []struct {
		flag string
		v    map[string]any
	}{
		{"--blockdev", map[string]any{"driver": "file", "node-name": "file", "filename": image}},
		{"--blockdev", map[string]any{"driver": "qcow2", "node-name": "disk", "file": "file", "discard": "unmap", "detect-zeroes": "unmap"}},
		{"--export", map[string]any{"type": "fuse", "id": "export", "node-name": "disk", "mountpoint": mountpoint, "writable": true, "allow-other": "off"}},
	} {
		b, err := json.Marshal(o.v)
		if err != nil {
			return nil, err
		}
		args = append(args, o.flag, string(b))
	}
	return args, nil
}

// waitMounted waits until a file system is mounted at e.Path: its device
// is no longer that of the directory holding it.
func (e *Export) waitMounted(ctx context.Context) error {
	var dir unix.Stat_t
	if err := unix.Stat(filepath.Dir(e.Path), &dir); err != nil {
		return err
	}
	deadline := time.After(exportTimeout)
	for {
		var st unix.Stat_t
		if err := unix.Stat(e.Path, &st); err == nil && st.Dev != dir.Dev {
			return nil
		}
		select {
		case <-e.done:
			return fmt.Errorf("it exited before the export appeared (%w): %s", e.err, strings.TrimSpace(e.stderr.String()))
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("the export did not appear within %s: %s", exportTimeout, strings.TrimSpace(e.stderr.String()))
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Close stops the daemon (SIGTERM), which flushes the qcow2 file and
// unmounts the export, and removes the mount point. A daemon that does
// not exit in time is killed and its mount detached.
func (e *Export) Close() error {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-e.done:
		if e.err != nil {
			err = fmt.Errorf("%s: %w: %s", StorageDaemon, e.err, strings.TrimSpace(e.stderr.String()))
		}
	case <-time.After(exportTimeout):
		_ = e.cmd.Process.Kill()
		<-e.done
		err = fmt.Errorf("%s did not stop within %s; killed it", StorageDaemon, exportTimeout)
	}
	Unmount(e.Path)
	if rerr := os.Remove(e.Path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// Unmount detaches whatever is mounted at mountpoint (a FUSE export whose
// daemon was killed), best effort: umount2 with MNT_DETACH as root, else
// fusermount3. Nothing mounted there is not an error.
func Unmount(mountpoint string) {
	if err := unix.Unmount(mountpoint, unix.MNT_DETACH); err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return
	}
	if p, err := exec.LookPath("fusermount3"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		defer cancel()
		_ = childproc.Command(ctx, p, "-u", "-z", mountpoint).Run()
	}
}

// lockedBuffer is a bytes.Buffer safe for the daemon's output goroutine
// and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil // enough to explain a failure
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
