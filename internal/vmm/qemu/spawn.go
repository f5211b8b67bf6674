package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a spawned, detached QEMU.
type proc struct {
	cmd     *exec.Cmd
	log     string // console log its stdout and stderr append to
	logFrom int64  // size of log before the spawn: older output is not ours
	done    chan struct{}
	waitErr error // valid once done is closed
}

// spawn starts argv in its own session (no controlling terminal, so a
// Ctrl-C aimed at banger does not reach it), stdin from /dev/null, stdout
// and stderr appended to consoleLog. It deliberately does not use
// exec.CommandContext: QEMU must outlive ctx and banger. A goroutine reaps
// the process if it exits while banger still runs.
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
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:noctx // QEMU must outlive ctx and banger
	cmd.Stdout = f
	cmd.Stderr = f
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

// waitRunning waits until QMP answers on q's socket and reports the
// machine running. It gives up when ctx ends, after timeout, or when QEMU
// exits first; the error then quotes what QEMU printed.
func (p *proc) waitRunning(ctx context.Context, q *QMP, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	lastErr := errors.New("no QMP socket yet")
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			if p.waitErr == nil {
				return fmt.Errorf("QEMU exited at once%s", p.output())
			}
			return fmt.Errorf("QEMU exited (%w)%s", p.waitErr, p.output())
		case <-deadline.C:
			return fmt.Errorf("QMP socket %s did not answer within %v: %w%s", q.Socket, timeout, lastErr, p.output())
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
		if st.Status == "running" {
			return nil
		}
		return fmt.Errorf("QEMU is %q instead of running%s", st.Status, p.output())
	}
}

// kill stops a QEMU that failed to start and reaps it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// output quotes the last lines written to the console log since the spawn
// (before the guest runs, only QEMU writes there), formatted to be appended
// to an error, or "" when there are none.
func (p *proc) output() string {
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, p.logFrom, 1<<20))
	if err != nil && len(data) == 0 {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(bytes.TrimSpace(data)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	if len(lines) == 0 {
		return ""
	}
	return ": " + strings.Join(lines, "; ")
}
