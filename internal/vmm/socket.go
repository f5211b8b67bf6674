package vmm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// MaxSocketPath is the longest unix socket path Linux accepts: sun_path
// is 108 bytes including the terminating NUL.
const MaxSocketPath = 107

// Socket is a unix socket a driver creates for a VM.
type Socket struct {
	What string // what it is, e.g. "API socket"
	Path string
}

// SocketLister is a Driver that can tell the unix sockets it will create
// for m, so that their paths can be checked before m ever starts.
type SocketLister interface {
	Sockets(m Machine) []Socket
}

// CheckSocketPath refuses a path too long for a unix socket. what names
// the socket ("console socket").
func CheckSocketPath(what, path string) error {
	if len(path) > MaxSocketPath {
		return &SocketPathError{What: what, Path: path}
	}
	return nil
}

// SocketPathError is a unix socket path longer than MaxSocketPath.
type SocketPathError struct{ What, Path string }

func (e *SocketPathError) Error() string {
	return fmt.Sprintf("%s path %s is %d bytes, longer than the %d bytes unix sockets allow",
		e.What, e.Path, len(e.Path), MaxSocketPath)
}

// ClearStaleSocket makes path ready to be listened on: it checks its
// length, refuses a socket something still answers on, and removes one
// nothing answers on (a previous run's).
func ClearStaleSocket(ctx context.Context, what, path string) error {
	if err := CheckSocketPath(what, path); err != nil {
		return err
	}
	var d net.Dialer
	if c, err := d.DialContext(ctx, "unix", path); err == nil {
		_ = c.Close()
		return fmt.Errorf("%s %s is in use: a process of this VM is already running on it (hint: stop the VM first)", what, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale %s %s: %w", what, path, err)
	}
	return nil
}
