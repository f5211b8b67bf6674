package vm

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// BootError is a boot that failed: the guest or VMM crashed, or the guest
// did not become ready in time. Reason is one line; the error text adds
// the last console lines.
type BootError struct {
	Reason  string
	Crashed bool
	// NoSSH says the guest timed out waiting for an SSH server: the
	// image may have none.
	NoSSH   bool
	Console string // the last console lines, already formatted
}

func (e *BootError) Error() string { return e.Reason + e.Console }

// consoleTail follows a boot's console output as it is written.
type consoleTail struct {
	path string
	off  int64
	f    *os.File
	text strings.Builder
	// scanned is how much of text the checks have seen, up to the start
	// of its last (possibly partial) line, which is looked at again.
	scanned int
}

// poll appends what was written since the last call and reports whether
// anything was.
func (c *consoleTail) poll() bool {
	if c.f == nil {
		f, err := os.Open(c.path)
		if err != nil {
			return false
		}
		if _, err := f.Seek(c.off, io.SeekStart); err != nil {
			f.Close()
			return false
		}
		c.f = f
	}
	n, _ := io.Copy(&c.text, io.LimitReader(c.f, 8<<20))
	c.off += n
	return n > 0
}

func (c *consoleTail) close() {
	if c.f != nil {
		c.f.Close()
	}
}

// unscanned returns the text the checks have not seen (from the start of
// the last line seen) and marks it seen.
func (c *consoleTail) unscanned() string {
	all := c.text.String()
	chunk := all[c.scanned:]
	if i := strings.LastIndexByte(chunk, '\n'); i >= 0 {
		c.scanned += i + 1
	}
	return chunk
}

// waitReady watches v's boot until the guest is ready, recording the boot
// timings from t0 (when the VMM was spawned). It fails fast on a kernel
// panic, a KVM failure or the VMM exiting, quoting the console. Each tick
// reads only what the console gained and checks only the new lines, so
// the wait costs the (often CPU-starved) VMM next to nothing.
func (s *Store) waitReady(ctx context.Context, v *VM, t0 time.Time, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var sshUp <-chan struct{}
	if v.Config.Ready == ReadySSH {
		sshUp = probeSSH(ctx, v.sshAddr())
	}
	con := &consoleTail{path: v.ConsoleLog(), off: v.State.ConsoleOffset}
	defer con.close()
	fail := func(reason string, crashed bool) *BootError {
		con.poll()
		return &BootError{Reason: reason, Crashed: crashed, Console: quoteConsole(con.text.String(), 15)}
	}
	var lastAliveCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			err := fail(fmt.Sprintf("the guest was not ready after %v (%s)", timeout, s.waitingFor(v)), false)
			err.NoSSH = v.Config.Ready == ReadySSH
			return err
		case <-sshUp:
			v.State.Boot.Ready = time.Since(t0)
			return nil
		case <-tick.C:
		}
		grew := con.poll()
		alive := true
		if !grew || time.Since(lastAliveCheck) > 50*time.Millisecond {
			lastAliveCheck = time.Now()
			if alive = v.State.Process().Alive(); !alive {
				con.poll() // what the VMM wrote before it died
				grew = true
			}
		}
		if grew {
			chunk := con.unscanned()
			b := &v.State.Boot
			if b.Kernel == 0 && strings.Contains(chunk, "Linux version") {
				b.Kernel = time.Since(t0)
			}
			if b.Init == 0 && initRE.MatchString(chunk) {
				b.Init = time.Since(t0)
			}
			if l := panicLine(chunk); l != "" {
				return fail("the guest kernel panicked: "+strings.TrimSpace(l), true)
			}
			if l := kvmRE.FindString(chunk); l != "" {
				return fail(kvmFailure(l), true)
			}
			// A guest that showed the marker was ready, even if it has
			// shut down since: reconcile records that.
			if v.Config.Ready == ReadyConsole && consoleReady(v.Config.ReadyMarker, chunk) {
				b.Ready = time.Since(t0)
				return nil
			}
		}
		if !alive {
			reason, crashed := crashReason(con.text.String())
			return fail("the VMM exited during boot: "+reason, crashed)
		}
	}
}

// consoleReady reports whether log shows the ready marker: marker if set,
// else the kernel starting init.
func consoleReady(marker, log string) bool {
	if marker != "" {
		return strings.Contains(log, marker)
	}
	return initRE.MatchString(log)
}

// waitingFor says what readiness v waits for, for timeout errors.
func (s *Store) waitingFor(v *VM) string {
	switch {
	case v.Config.Ready == ReadySSH:
		return "waiting for its SSH server on " + v.sshAddr()
	case v.Config.ReadyMarker != "":
		return fmt.Sprintf("waiting for %q on its console", v.Config.ReadyMarker)
	}
	return "waiting for the kernel to start init"
}

// probeSSH returns a channel closed once an SSH server greets on addr. It
// tries every 100ms until ctx ends.
func probeSSH(ctx context.Context, addr string) <-chan struct{} {
	up := make(chan struct{})
	go func() {
		for {
			if sshGreets(ctx, addr) {
				close(up)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return up
}

// sshGreets reports whether the server at addr sends an SSH banner.
func sshGreets(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "SSH-"
}
