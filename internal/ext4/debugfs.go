package ext4

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/thaloco/banger/internal/childproc"
	"github.com/thaloco/banger/internal/logtail"
)

// Edit runs debugfs commands (one per element, e.g. `sif "/etc/x" uid 5`)
// against the image img, writing to it, and fails if debugfs reports an
// error for any of them. Quote paths with Quote.
func Edit(ctx context.Context, img string, commands []string) error {
	if len(commands) == 0 {
		return nil
	}
	// -f - reads the commands from stdin.
	cmd := childproc.Command(ctx, "debugfs", "-w", "-f", "-", img)
	cmd.Stdin = strings.NewReader(strings.Join(commands, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("debugfs -w %s: %w: %s", img, err, logtail.Quote(stderr.String(), 3))
	}
	// debugfs keeps going after a failed command and exits 0; its errors
	// are the stderr lines other than its version banner.
	var errs []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			errs = append(errs, line)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("editing %s with debugfs: %s", img, strings.Join(errs[:min(len(errs), 3)], "; "))
	}
	return nil
}

// Quote quotes a path or value for a debugfs command line.
func Quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
