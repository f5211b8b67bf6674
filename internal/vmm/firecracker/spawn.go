package firecracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a spawned, detached Firecracker (or jailer) process.
type proc struct {
	cmd     *exec.Cmd
	log     string // console log file its stdout and stderr append to
	logFrom int64  // size of log before the spawn: older runs' output is not ours
	done    chan struct{}
	waitErr error // valid once done is closed
}

// spawn starts argv in its own session, stdin from /dev/null, stdout and
// stderr appended to consoleLog (Firecracker's serial console is its
// stdout). A goroutine reaps the process when it exits, so it never
// lingers as a zombie while banger runs.
func spawn(argv []string, consoleLog string) (*proc, error) {
	f, err := os.OpenFile(consoleLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening console log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("console log: %w", err)
	}
	// Not CommandContext: the VMM must outlive ctx and banger.
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:noctx
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Stdin = nil // the null device
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, log: consoleLog, logFrom: st.Size(), done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitSocket waits until something accepts connections on sock. It gives
// up when ctx ends, after timeout, or when the process exits first (the
// error then quotes the process's last output lines).
func (p *proc) waitSocket(ctx context.Context, sock string, timeout time.Duration) error {
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
		case <-p.done:
			return fmt.Errorf("firecracker exited before creating its API socket %s: %w%s",
				sock, p.waitErr, p.outputSince())
		case <-deadline.C:
			return fmt.Errorf("no API socket %s after %v%s", sock, timeout, p.outputSince())
		case <-tick.C:
		}
	}
}

// kill stops a process that failed to start properly and reaps it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// outputSince quotes the last lines the process wrote to the console log,
// formatted to be appended to an error; "" if it wrote nothing.
func (p *proc) outputSince() string {
	lines := tailLines(p.log, p.logFrom, 10)
	if len(lines) == 0 {
		return ""
	}
	return "; its last output:\n    " + strings.Join(lines, "\n    ")
}

// tailLines returns the last n non-empty lines of file after offset from,
// reading at most 64 KiB.
func tailLines(file string, from int64, n int) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() <= from {
		return nil
	}
	if st.Size()-from > maxBody {
		from = st.Size() - maxBody
	}
	data, err := io.ReadAll(io.NewSectionReader(f, from, st.Size()-from))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	var lines []string
	for _, l := range bytes.Split(data, []byte("\n")) {
		if s := strings.TrimRight(string(l), "\r "); s != "" {
			lines = append(lines, s)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
