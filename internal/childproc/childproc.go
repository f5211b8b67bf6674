// Package childproc runs the helper programs banger waits for (mkfs.ext4,
// resize2fs, debugfs, iptables, apt in a namespace, …) so that they never
// outlive it: besides ctx, the kernel kills a helper when banger dies, even
// by SIGKILL, which no deferred cleanup survives. VMMs, which must outlive
// banger, are started by vmmproc instead.
package childproc

import (
	"context"
	"os/exec"
	"syscall"
)

// Command is exec.CommandContext with the child set to receive SIGKILL
// when banger's thread that started it dies (PR_SET_PDEATHSIG). Go's
// threads live as long as the process unless a goroutine locked to one
// ends, which banger never does around a helper.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
