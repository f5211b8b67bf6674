package guestcopy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/pkg/sftp"
)

// kind is a sentinel error; it also matches the fs error it stands for,
// so errors.Is(err, fs.ErrNotExist) holds for ErrNotExist.
type kind struct {
	msg string
	is  error
}

func (k *kind) Error() string { return k.msg }

func (k *kind) Is(target error) bool { return k.is != nil && target == k.is }

// What went wrong, as Error.Err holds it when it is known.
var (
	// ErrNoSFTP: the guest's SSH server has no SFTP subsystem.
	ErrNoSFTP error = &kind{msg: "the guest's SSH server offers no SFTP service"}
	// ErrNotExist: no such file or directory.
	ErrNotExist error = &kind{msg: "no such file or directory", is: fs.ErrNotExist}
	// ErrPermission: the side refused access.
	ErrPermission error = &kind{msg: "permission denied", is: fs.ErrPermission}
	// ErrNoSpace: the destination's filesystem is full.
	ErrNoSpace error = &kind{msg: "no space left on device"}
	// ErrReadOnly: the destination's filesystem is mounted read-only.
	ErrReadOnly error = &kind{msg: "read-only file system"}
	// ErrIsDir: a source is a directory but Options.Recursive is off.
	ErrIsDir error = &kind{msg: "is a directory"}
	// ErrNotDir: the destination must be a directory (several sources, or
	// a path ending in "/") and is not.
	ErrNotDir error = &kind{msg: "not a directory"}
	// ErrOverwriteDir: a file or link would replace a directory.
	ErrOverwriteDir error = &kind{msg: "cannot overwrite a directory with a non-directory"}
	// ErrOverwriteNonDir: a directory would replace a file or link.
	ErrOverwriteNonDir error = &kind{msg: "cannot overwrite a non-directory with a directory"}
	// ErrUnsupported: the source is neither a regular file, a directory nor
	// a symbolic link (a device, FIFO or socket); it is skipped.
	ErrUnsupported error = &kind{msg: "not a regular file, directory or symbolic link (skipped)"}
	// ErrConnection: the SSH connection to the guest ended.
	ErrConnection error = &kind{msg: "the connection to the guest was lost"}
)

// Error is a failure on one side of a copy, naming the path there.
type Error struct {
	Op    string // what was being done: "reading", "writing", ...
	Guest bool   // Path is in the guest (else on the host)
	Path  string
	Err   error // one of the Err* sentinels when known
}

func (e *Error) Error() string {
	where := ""
	if e.Guest {
		where = "guest:"
	}
	return fmt.Sprintf("%s %s%s: %v", e.Op, where, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// fatal errors end the whole copy rather than one source.
func fatal(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrNoSpace) || errors.Is(err, ErrConnection)
}

// classifyHost maps host errno values to the sentinels.
func classifyHost(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return ErrNoSpace
	case errors.Is(err, syscall.EROFS):
		return ErrReadOnly
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotExist
	case errors.Is(err, fs.ErrPermission):
		return ErrPermission
	case errors.Is(err, syscall.EISDIR):
		return ErrIsDir
	case errors.Is(err, syscall.ENOTDIR):
		return ErrNotDir
	}
	return err
}

// classifyGuest maps SFTP status errors to the sentinels. SFTP (version
// 3) has codes for a missing file and a refusal only; OpenSSH's
// sftp-server reports a full or read-only filesystem as a bare "Failure".
// For those, stat asks the server about the filesystem holding the path
// (statvfs@openssh.com) when it can.
func classifyGuest(err error, statfs func() (*sftp.StatVFS, error)) error {
	var se *sftp.StatusError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sftp.ErrSSHFxConnectionLost):
		return ErrConnection
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotExist
	case errors.Is(err, fs.ErrPermission):
		return ErrPermission
	case !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure:
		return err
	}
	// Servers that say more than "Failure" (pkg/sftp's passes strerror).
	switch msg := strings.ToLower(se.Error()); {
	case strings.Contains(msg, "no space left"), strings.Contains(msg, "quota exceeded"):
		return ErrNoSpace
	case strings.Contains(msg, "read-only file system"):
		return ErrReadOnly
	}
	if statfs == nil {
		return err
	}
	st, serr := statfs()
	if serr != nil {
		return err
	}
	const stRDONLY = 1
	switch {
	case st.Flag&stRDONLY != 0:
		return ErrReadOnly
	// banger copies as root, who may use the reserved blocks too (Bfree,
	// not Bavail). A write that failed leaves less than a buffer free.
	case st.Bfree*st.Frsize < 2*bufSize, st.Files > 0 && st.Ffree == 0:
		return ErrNoSpace
	}
	return err
}
