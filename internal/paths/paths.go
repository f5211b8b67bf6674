// Package paths holds every on-disk location banger uses, derived from the
// environment in one place so no other package builds state paths itself.
package paths

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// ErrNoHome is returned when no variable names a state directory and
// HOME is not set either.
var ErrNoHome = errors.New("cannot find a state directory: HOME is not set")

// NotDirError says the state directory's path holds something else.
type NotDirError struct{ Path string }

func (e *NotDirError) Error() string {
	return fmt.Sprintf("state directory %s is not a directory", e.Path)
}

// Layout is the set of directories banger keeps its state in.
type Layout struct {
	// State is the root of banger's state ($BANGER_STATE_DIR, else
	// $XDG_STATE_HOME/banger, else ~/.local/state/banger).
	State string
	// KernelsDir holds installed kernels, one directory per name
	// (<state>/kernels unless $BANGER_KERNELS_DIR says otherwise).
	KernelsDir string
}

// FromEnv computes the layout from environment variables read through getenv
// (os.Getenv in production, a map lookup in tests).
func FromEnv(getenv func(string) string) (Layout, error) {
	state := getenv("BANGER_STATE_DIR")
	if state == "" {
		if xdg := getenv("XDG_STATE_HOME"); xdg != "" {
			if !filepath.IsAbs(xdg) {
				return Layout{}, fmt.Errorf("XDG_STATE_HOME=%q is not an absolute path (hint: set it to an absolute path or unset it)", xdg)
			}
			state = filepath.Join(xdg, "banger")
		} else {
			home := getenv("HOME")
			if home == "" {
				return Layout{}, ErrNoHome
			}
			state = filepath.Join(home, ".local", "state", "banger")
		}
	}
	state, err := filepath.Abs(state)
	if err != nil {
		return Layout{}, fmt.Errorf("resolving state directory %q: %w", state, err)
	}
	kernels := getenv("BANGER_KERNELS_DIR")
	if kernels == "" {
		kernels = filepath.Join(state, "kernels")
	} else if kernels, err = filepath.Abs(kernels); err != nil {
		return Layout{}, fmt.Errorf("resolving BANGER_KERNELS_DIR: %w", err)
	}
	return Layout{State: state, KernelsDir: kernels}, nil
}

// Kernel is the install directory of the kernel called name.
func (l Layout) Kernel(name string) string { return filepath.Join(l.KernelsDir, name) }

// ImagesDir holds registered and built images, one directory per name.
func (l Layout) ImagesDir() string { return filepath.Join(l.State, "images") }

// Image is the directory of the image called name.
func (l Layout) Image(name string) string { return filepath.Join(l.ImagesDir(), name) }

// VMsDir holds one directory per VM (config, pid, sockets, console log).
func (l Layout) VMsDir() string { return filepath.Join(l.State, "vms") }

// VM is the state directory of the VM called name.
func (l Layout) VM(name string) string { return filepath.Join(l.VMsDir(), name) }

// SnapshotsDir holds saved VM snapshots, one directory each.
func (l Layout) SnapshotsDir() string { return filepath.Join(l.State, "snapshots") }

// Snapshot is the directory of the snapshot called name.
func (l Layout) Snapshot(name string) string { return filepath.Join(l.SnapshotsDir(), name) }

// CacheDir holds reusable intermediate results (partial downloads, image
// build caches). Anything in it may be deleted at any time.
func (l Layout) CacheDir() string { return filepath.Join(l.State, "cache") }

// ImageBuildCacheDir holds image builds' root trees, by package hash.
func (l Layout) ImageBuildCacheDir() string { return filepath.Join(l.CacheDir(), "images") }

// SSHServerCacheDir holds whether a disk has an SSH server, by the
// digest of the image it was made from.
func (l Layout) SSHServerCacheDir() string { return filepath.Join(l.CacheDir(), "ssh-server") }

// JailDir holds the jails of jailed Firecracker VMs, on the same file
// system as their disks (the jailer hard-links each disk into its jail).
func (l Layout) JailDir() string { return filepath.Join(l.State, "jail") }

// SSHDir holds banger's own SSH key pair, used to reach guests.
func (l Layout) SSHDir() string { return filepath.Join(l.State, "ssh") }

// NetDir holds tap networking leases and their lock.
func (l Layout) NetDir() string { return filepath.Join(l.State, "net") }

// LocksDir holds lock files; they are never removed, only flocked.
func (l Layout) LocksDir() string { return filepath.Join(l.State, "locks") }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// MaxNameLen bounds names so the paths built from them stay short (unix
// socket paths must fit in 108 bytes).
const MaxNameLen = 64

// ValidateName checks that name is safe to use as a single path component
// for a kernel, image or VM: [a-z0-9][a-z0-9._-]*, at most MaxNameLen bytes.
// kind names the object in the error ("kernel", "image", "vm").
func ValidateName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", kind)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s name %q is longer than %d characters", kind, name, MaxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("invalid %s name %q: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", kind, name)
	}
	return nil
}

// EnsureState creates the state directory private (0700), or makes an
// existing one private, and reports whether it had to take access away
// from other users (the caller says so). Everything banger keeps is
// under it: guest memory in snapshots, disks, keys, locks.
func EnsureState(l Layout) (tightened bool, err error) {
	st, err := os.Stat(l.State)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(l.State), 0o755); err != nil {
			return false, fmt.Errorf("creating the state directory's parent: %w", err)
		}
		if err := os.Mkdir(l.State, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("creating the state directory: %w", err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state directory: %w", err)
	}
	if !st.IsDir() {
		return false, &NotDirError{Path: l.State}
	}
	if st.Mode().Perm()&0o077 == 0 {
		return false, nil
	}
	if err := os.Chmod(l.State, st.Mode().Perm()&0o700); err != nil {
		return false, fmt.Errorf("making the state directory %s private: %w", l.State, err)
	}
	return true, nil
}
