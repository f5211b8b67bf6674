package firecracker

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// placeReadOnly puts src, a kernel or initrd, into a jail at dst for the
// jailed Firecracker to read and never change. Only a file that nobody but
// root can change (owned by root, mode exactly 0444) is hard-linked: the
// jailed user can neither write nor chmod that inode. Anything else is
// copied (a reflink where the filesystem shares blocks) to a file owned by
// root and the jail's group, mode 0440: the jailed user reads it through
// its group and can neither write nor chmod it, and a link it could write
// through never reaches the shared kernel store. The check and the link
// are made on the one opened file, so a file swapped in between is never
// linked.
func placeReadOnly(src, dst string, gid int) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	if rootReadOnly(st) {
		// Linking /proc/self/fd/N, following it, links the opened inode.
		fdPath := fmt.Sprintf("/proc/self/fd/%d", in.Fd())
		if unix.Linkat(unix.AT_FDCWD, fdPath, unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW) == nil {
			return nil
		}
		// Another filesystem, or no /proc: a copy is as safe.
	}
	return copyReadOnly(in, dst, gid)
}

// rootReadOnly reports whether st is a file only root can change: owned by
// uid 0, mode 0444 with no setuid, setgid or sticky bit.
func rootReadOnly(st fs.FileInfo) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && s.Uid == 0 && st.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0o444
}

// copyReadOnly copies in to the new file dst, which ends up owned by this
// process's user (root, who runs the jailer) and group gid, mode 0440.
func copyReadOnly(in *os.File, dst string, gid int) (err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(dst)
		}
	}()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		if _, err := io.Copy(out, in); err != nil {
			return fmt.Errorf("copying %s: %w", in.Name(), err)
		}
	}
	if err := out.Chown(-1, gid); err != nil {
		return err
	}
	if err := out.Chmod(0o440); err != nil {
		return err
	}
	return out.Close()
}
