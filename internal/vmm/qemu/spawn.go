package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// waitRunning waits until QMP answers on q's socket and reports the
// machine running. It gives up when ctx ends, after timeout, or when QEMU
// exits first; the error then quotes what QEMU printed.
func waitRunning(ctx context.Context, p *vmmproc.Proc, q *QMP, timeout time.Duration) error {
	return waitStatus(ctx, p, q, timeout, "starting", func(st string) (bool, error) {
		if st == "running" {
			return true, nil
		}
		return false, fmt.Errorf("QEMU is %q instead of running%s", st, output(p))
	})
}

// waitStatus polls QEMU's run state over QMP until accept says done (or
// fails), QEMU exits, ctx ends or timeout passes. doing names the phase
// in errors ("starting", "loading the snapshot").
func waitStatus(ctx context.Context, p *vmmproc.Proc, q *QMP, timeout time.Duration, doing string, accept func(status string) (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	lastErr := errors.New("no QMP socket yet")
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Done():
			if p.Err() == nil {
				return fmt.Errorf("QEMU exited at once while %s%s", doing, output(p))
			}
			return fmt.Errorf("QEMU exited while %s (%w)%s", doing, p.Err(), output(p))
		case <-deadline.C:
			return fmt.Errorf("QEMU was still %s after %v (QMP socket %s): %w%s", doing, timeout, q.Socket, lastErr, output(p))
		case <-tick.C:
		}
		if _, err := os.Stat(q.Socket); err != nil {
			lastErr = err
			continue
		}
		var st struct {
			Status string `json:"status"`
		}
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := q.Execute(qctx, "query-status", nil, &st)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if st.Status == "" {
			// Seen once under heavy load (a clone-of-a-clone restore):
			// a reply without a status. Ask again rather than fail.
			lastErr = errors.New("QEMU reported no status")
			continue
		}
		done, err := accept(st.Status)
		if done || err != nil {
			return err
		}
		lastErr = fmt.Errorf("QEMU is %q", st.Status)
	}
}

// output quotes the last lines written to the console log since the spawn
// (before the guest runs, only QEMU writes there), formatted to be appended
// to an error, or "" when there are none.
func output(p *vmmproc.Proc) string {
	lines := p.Output(5)
	if len(lines) == 0 {
		return ""
	}
	return ": " + strings.Join(lines, "; ")
}
