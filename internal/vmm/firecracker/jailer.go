package firecracker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/thaloco/banger/internal/vmm"
)

// Jailer runs Firecracker through Firecracker's jailer: chrooted, as an
// unprivileged uid/gid. The jailer itself must run as root. The jail of a
// VM is <ChrootBaseDir>/<firecracker binary name>/<VM name>/root; the
// rootfs is hard-linked into it and given to the jailed user, the kernel
// and initrd are put there read-only (see placeReadOnly), and the API
// socket, Firecracker's log and the vsock socket live in it.
type Jailer struct {
	// Binary is the jailer executable, a path or a name on PATH.
	// Empty means "jailer".
	Binary string
	// UID and GID Firecracker runs as. Neither may be 0: Start refuses
	// to run Firecracker as root. DefaultUID and DefaultGID are a
	// reasonable choice.
	UID, GID int
	// ChrootBaseDir is where jails are made. Empty means /srv/jailer. It
	// must be on the same filesystem as the VMs' disks: each disk is
	// hard-linked into its jail, so the guest writes to the VM's own disk.
	ChrootBaseDir string
	// ExtraArgs go to the jailer before "--", e.g. "--cgroup-version", "2",
	// or "--node", "0" which jailers before v1.0 require.
	ExtraArgs []string
}

// DefaultUID and DefaultGID are the ids banger runs jailed Firecrackers
// as unless told otherwise: high enough to belong to no account on a
// usual system, and never root.
const (
	DefaultUID = 64000
	DefaultGID = 64000
)

// CheckIDs refuses a uid or gid the jailed Firecracker must not run as:
// root's (0) and anything outside 1..2^32-2 (-1 is "no change" to
// chown(2), 2^32-1 is invalid).
func CheckIDs(uid, gid int) error {
	for _, id := range []struct {
		what string
		n    int
	}{{"uid", uid}, {"gid", gid}} {
		switch {
		case id.n == 0:
			return fmt.Errorf("refusing to run the jailed Firecracker as %s 0 (root): pick an unprivileged %s", id.what, id.what)
		case id.n < 0 || int64(id.n) > math.MaxUint32-1:
			return fmt.Errorf("jailer %s %d is out of range (1 to %d)", id.what, id.n, int64(math.MaxUint32-1))
		}
	}
	return nil
}

// ValidJailerID reports whether the jailer accepts id as --id: 1 to 64
// ASCII letters, digits and hyphens.
func ValidJailerID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		switch {
		case r == '-', '0' <= r && r <= '9', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		default:
			return false
		}
	}
	return true
}

func (j *Jailer) binary() (string, error) { return lookBinary(j.Binary, "jailer") }

func (j *Jailer) baseDir() string {
	if j.ChrootBaseDir == "" {
		return "/srv/jailer"
	}
	return j.ChrootBaseDir
}

// jailDir is the jailer's directory for VM name: <base>/<exec name>/<name>.
func (j *Jailer) jailDir(fcBinary, name string) string {
	return filepath.Join(j.baseDir(), filepath.Base(fcBinary), name)
}

func (j *Jailer) rootDir(fcBinary, name string) string {
	return filepath.Join(j.jailDir(fcBinary, name), "root")
}

// JailDir is the directory the jailer uses for VM m, "" without a jailer.
// Remove it when the VM is removed; Start replaces a stale one.
func (d *Driver) JailDir(m vmm.Machine) string {
	if d.Jailer == nil {
		return ""
	}
	bin, _ := d.binary()
	if bin == "" {
		bin = "firecracker"
	}
	return d.Jailer.jailDir(bin, m.Name)
}

// prepare builds a fresh jail for m and the jailer command line.
func (j *Jailer) prepare(ctx context.Context, fcBinary string, m vmm.Machine) (layout, error) {
	jbin, err := j.binary()
	if err != nil {
		return layout{}, err
	}
	if !ValidJailerID(m.Name) {
		return layout{}, fmt.Errorf("VM name %q cannot be a jailer id: it takes 1 to 64 letters, digits and hyphens", m.Name)
	}
	if err := CheckIDs(j.UID, j.GID); err != nil {
		return layout{}, fmt.Errorf("VM %q: %w", m.Name, err)
	}
	root := j.rootDir(fcBinary, m.Name)
	sock := filepath.Join(root, SocketName)
	if err := clearSocket(ctx, m.Name, sock); err != nil {
		return layout{}, err
	}
	// The jailer refuses to reuse a jail (it mknods /dev/kvm in it), so
	// a previous run's is removed: nothing runs in it, clearSocket said so.
	if err := os.RemoveAll(j.jailDir(fcBinary, m.Name)); err != nil {
		return layout{}, fmt.Errorf("VM %q: removing old jail: %w", m.Name, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return layout{}, fmt.Errorf("VM %q: creating jail: %w", m.Name, err)
	}
	// Firecracker creates its API and vsock sockets here after dropping
	// privileges.
	if err := os.Chown(root, j.UID, j.GID); err != nil {
		return layout{}, fmt.Errorf("VM %q: jail: %w", m.Name, err)
	}
	l := layout{
		hostSocket: sock,
		kernel:     "/vmlinux",
		rootfs:     "/rootfs.ext4",
		logFile:    "/" + LogName,
		vsock:      "/" + VsockName,
	}
	if err := placeReadOnly(m.Kernel, filepath.Join(root, l.kernel), j.GID); err != nil {
		return layout{}, fmt.Errorf("VM %q: putting the kernel in the jail: %w", m.Name, err)
	}
	if m.Initrd != "" {
		l.initrd = "/initrd"
		if err := placeReadOnly(m.Initrd, filepath.Join(root, l.initrd), j.GID); err != nil {
			return layout{}, fmt.Errorf("VM %q: putting the initrd in the jail: %w", m.Name, err)
		}
	}
	if err := j.placeDisk(m.Rootfs, filepath.Join(root, l.rootfs)); err != nil {
		return layout{}, fmt.Errorf("VM %q: putting the rootfs in the jail: %w", m.Name, err)
	}
	for _, d := range m.Drives {
		// Extra drives are read-only copy-ins: a read-only copy of
		// their own, as the kernel gets.
		p := "/drive-" + d.ID + ".ext4"
		if err := placeReadOnly(d.Path, filepath.Join(root, p), j.GID); err != nil {
			return layout{}, fmt.Errorf("VM %q: putting drive %s in the jail: %w", m.Name, d.ID, err)
		}
		l.drives = append(l.drives, p)
	}
	if err := createEmpty(filepath.Join(root, l.logFile), j.UID, j.GID); err != nil {
		return layout{}, fmt.Errorf("VM %q: %w", m.Name, err)
	}
	l.argv = append([]string{jbin,
		"--id", m.Name,
		"--exec-file", fcBinary,
		"--uid", strconv.Itoa(j.UID),
		"--gid", strconv.Itoa(j.GID),
		"--chroot-base-dir", j.baseDir(),
	}, j.ExtraArgs...)
	l.argv = append(l.argv, "--", "--api-sock", "/"+SocketName)
	return l, nil
}

// placeDisk hard-links the VM's writable disk into the jail and gives it
// to the jailed user. A copy would lose the guest's writes, so a disk on
// another filesystem is an error.
func (j *Jailer) placeDisk(src, dst string) error {
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return fmt.Errorf("%w (hint: put the jailer's chroot base dir %s on the same filesystem as banger's state)", err, j.baseDir())
		}
		return err
	}
	return os.Chown(dst, j.UID, j.GID)
}
