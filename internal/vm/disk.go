package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/thaloco/banger/internal/childproc"
)

// growDisk enlarges the ext4 image at path to size bytes: the file grows
// sparsely, then e2fsck and resize2fs grow the filesystem into it.
func growDisk(ctx context.Context, path string, size int64) error {
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("growing disk: %w", err)
	}
	// e2fsck exits 1 when it fixed something harmless (e.g. timestamps).
	if err := run(ctx, "e2fsck", "-fp", path); err != nil && !exitCode(err, 1) {
		return fmt.Errorf("checking the disk before resizing: %w", err)
	}
	if err := run(ctx, "resize2fs", path); err != nil {
		return fmt.Errorf("growing the disk's filesystem: %w", err)
	}
	return nil
}

// run runs a command, its stderr captured into the error.
func run(ctx context.Context, name string, args ...string) error {
	cmd := childproc.Command(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func exitCode(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// hostMemoryMiB is MemTotal from /proc/meminfo in MiB, 0 if unknown.
func hostMemoryMiB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}
