package firecracker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// waitSocket waits until something accepts connections on sock. It gives
// up when ctx ends, after timeout, or when the process exits first.
func waitSocket(ctx context.Context, p *vmmproc.Proc, sock string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		if c, err := d.DialContext(ctx, "unix", sock); err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for API socket %s: %w", sock, ctx.Err())
		case <-p.Done():
			return fmt.Errorf("firecracker exited before creating its API socket %s: %w", sock, p.Err())
		case <-deadline.C:
			return fmt.Errorf("no API socket %s after %v", sock, timeout)
		case <-tick.C:
		}
	}
}

// outputSince quotes the last lines the process wrote to the console log,
// formatted to be appended to an error; "" if it wrote nothing.
func outputSince(p *vmmproc.Proc) string {
	lines := p.Output(10)
	if len(lines) == 0 {
		return ""
	}
	return "; its last output:\n    " + strings.Join(lines, "\n    ")
}
