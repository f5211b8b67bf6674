package vm

import (
	"bytes"
	"context"
	"fmt"
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
		return false, fmt.Errorf("looking for an SSH server in %s with debugfs: %w: %s (hint: install e2fsprogs, or pass --ready)", disk, err, strings.TrimSpace(stderr.String()))
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
