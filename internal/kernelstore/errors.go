package kernelstore

import (
	"errors"
	"fmt"
)

// ErrNoDistro is returned by Import without ImportOptions.Distro.
var ErrNoDistro = errors.New("importing a kernel needs a distribution name (for example generic)")

// InstalledError refuses to replace the installed kernel Name without
// being forced to.
type InstalledError struct {
	Name string
	// Imported: the installed kernel came from a local import and a pull
	// would replace it with the catalog's.
	Imported bool
	// Arch is the installed kernel's architecture when a pull of another
	// one (PullArch) would replace it.
	Arch, PullArch string
	// InstalledEntry is the catalog entry the installed kernel came from
	// when a pull of another entry would replace it.
	InstalledEntry string
	// Entry is the catalog entry being pulled.
	Entry string
}

func (e *InstalledError) Error() string {
	switch {
	case e.Imported:
		return fmt.Sprintf("kernel %q is already installed from a local import", e.Name)
	case e.PullArch != "":
		return fmt.Sprintf("kernel %q is installed for %s; pulling its %s build would replace it", e.Name, e.Arch, e.PullArch)
	case e.InstalledEntry != "":
		return fmt.Sprintf("kernel %q is installed from catalog entry %s; pulling %s under its name would replace it", e.Name, e.InstalledEntry, e.Entry)
	}
	return fmt.Sprintf("kernel %q is already installed", e.Name)
}

// NoVmlinuxError says the directory a kernel is imported from has no
// vmlinux.
type NoVmlinuxError struct{ Name, Dir string }

func (e *NoVmlinuxError) Error() string {
	return fmt.Sprintf("importing kernel %q: %s has no vmlinux", e.Name, e.Dir)
}

// VersionError says the version of an imported kernel could not be read
// from its vmlinux.
type VersionError struct {
	Name string
	Err  error
}

func (e *VersionError) Error() string { return fmt.Sprintf("importing kernel %q: %v", e.Name, e.Err) }

func (e *VersionError) Unwrap() error { return e.Err }

// NoSpaceError is a kernel install that ran out of space in Dir, the
// kernels directory; it is syscall.ENOSPC.
type NoSpaceError struct {
	Dir string
	Err error
}

func (e *NoSpaceError) Error() string { return e.Err.Error() }

func (e *NoSpaceError) Unwrap() error { return e.Err }

// ImportArchError says the vmlinux of an import is not for the
// architecture asked for; Err is the arch package's error.
type ImportArchError struct {
	Name string
	Err  error
}

func (e *ImportArchError) Error() string {
	return fmt.Sprintf("importing kernel %q: %v", e.Name, e.Err)
}

func (e *ImportArchError) Unwrap() error { return e.Err }
