package firecracker

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/consolerelay"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// spawned is a Firecracker the driver started, its API socket up, not yet
// configured.
type spawned struct {
	m       vmm.Machine
	proc    *vmmproc.Proc
	relay   *consolerelay.Relay // nil without ConsoleRelay
	conSock string              // the relay's socket, "" without one
	layout  layout
	client  *Client
}

// spawn lays out m's files (in its jail with the jailer), starts the
// console relay and Firecracker, and waits for the API socket. On failure
// nothing it started is left running.
func (d *Driver) spawn(ctx context.Context, m vmm.Machine) (*spawned, error) {
	for _, sock := range d.Sockets(m) {
		if err := vmm.CheckSocketPath(sock.What, sock.Path); err != nil {
			return nil, fmt.Errorf("VM %q: %w", m.Name, err)
		}
	}
	bin, err := d.binary()
	if err != nil {
		return nil, err
	}
	var l layout
	if d.Jailer != nil {
		l, err = d.Jailer.prepare(ctx, bin, m)
	} else {
		l, err = plainLayout(ctx, bin, m)
	}
	if err != nil {
		return nil, err
	}
	consoleLog := m.ConsoleLog
	if consoleLog == "" {
		consoleLog = filepath.Join(m.Dir, "console.log")
	}
	if err := os.MkdirAll(filepath.Dir(consoleLog), 0o755); err != nil {
		return nil, fmt.Errorf("VM %q console log: %w", m.Name, err)
	}
	s := &spawned{m: m, layout: l, client: &Client{Socket: l.hostSocket}}
	var opts vmmproc.Options
	if len(d.ConsoleRelay) > 0 {
		s.conSock = filepath.Join(m.Dir, ConsoleSocketName)
		var tty *os.File
		s.relay, tty, err = consolerelay.Start(ctx, d.ConsoleRelay, s.conSock, consoleLog)
		if err != nil {
			return nil, fmt.Errorf("VM %q console: %w", m.Name, err)
		}
		opts.Terminal = tty
	}
	s.proc, err = vmmproc.SpawnWith(l.argv, consoleLog, opts)
	if opts.Terminal != nil {
		// Firecracker holds the terminal now; the relay sees it hang
		// up when Firecracker exits.
		opts.Terminal.Close()
	}
	if err != nil {
		if s.relay != nil {
			s.relay.Close(0)
		}
		return nil, fmt.Errorf("starting firecracker for VM %q: %w", m.Name, err)
	}
	timeout := d.SocketTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if err := waitSocket(ctx, s.proc, l.hostSocket, timeout); err != nil {
		return nil, s.fail("starting", err)
	}
	return s, nil
}

// fail kills what was started and returns err, saying what was being
// done and quoting Firecracker's last words: the relay logs them as it
// exits.
func (s *spawned) fail(doing string, err error) error {
	s.proc.Kill()
	if s.relay != nil {
		s.relay.Close(2 * time.Second)
	}
	return fmt.Errorf("%s firecracker for VM %q: %w%s", doing, s.m.Name, err, outputSince(s.proc))
}

// process describes the running Firecracker to the caller.
func (s *spawned) process() vmm.Process {
	return vmm.Process{PID: s.proc.PID(), APISocket: s.layout.hostSocket, ConsoleSocket: s.conSock}
}

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
