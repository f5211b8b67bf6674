package vm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/thaloco/banger/internal/childproc"
)

// sshServers are the file names of the SSH servers banger recognizes.
var sshServers = map[string]bool{"sshd": true, "dropbear": true}

// hasSSHServer reports whether the ext4 image at disk holds an SSH server
// binary (sshd or dropbear) in /usr/sbin, /sbin or /usr/bin. It reads the
// image with debugfs (e2fsprogs), without mounting it.
func hasSSHServer(ctx context.Context, disk string) (bool, error) {
	cmd := childproc.Command(ctx, "debugfs", "-f", "-", disk)
	cmd.Stdin = strings.NewReader("ls -p /usr/sbin\nls -p /sbin\nls -p /usr/bin\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, &SSHServerSearchError{Disk: disk, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	// ls -p prints /INODE/MODE/UID/GID/NAME/SIZE/ per entry.
	for _, line := range strings.Split(stdout.String(), "\n") {
		f := strings.Split(line, "/")
		if len(f) >= 7 && sshServers[f[5]] && !strings.HasPrefix(f[2], "04") {
			return true, nil
		}
	}
	return false, nil
}

// sshServerIn reports whether src holds an SSH server. An image's rootfs
// never changes under its sha256, so for one the answer is kept in
// <state>/cache/ssh-server/<sha256> ("yes" or "no"): only the first VM
// made from an image runs debugfs, and VM creation stays a few file
// writes.
func (s *Store) sshServerIn(ctx context.Context, src source) (bool, error) {
	if src.imageSHA256 == "" {
		return hasSSHServer(ctx, src.path)
	}
	cache := filepath.Join(s.Layout.SSHServerCacheDir(), src.imageSHA256)
	switch b, _ := os.ReadFile(cache); string(b) {
	case "yes\n":
		return true, nil
	case "no\n":
		return false, nil
	}
	ok, err := hasSSHServer(ctx, src.path)
	if err != nil {
		return false, err
	}
	answer := "no\n"
	if ok {
		answer = "yes\n"
	}
	// A cache: written atomically, not synced, and a failure is no error.
	if os.MkdirAll(filepath.Dir(cache), 0o700) == nil {
		_ = writeFileAtomic(cache, []byte(answer))
	}
	return ok, nil
}

// writeFileAtomic writes data to path through a temp file and a rename,
// without syncing.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
