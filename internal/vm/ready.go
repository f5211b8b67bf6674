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
	Console string // the last console lines, already formatted
}

func (e *BootError) Error() string { return e.Reason + e.Console }

// consoleTail follows a boot's console output as it is written.
type consoleTail struct {
	path string
	off  int64
	text strings.Builder
}

// poll appends what was written since the last call.
func (c *consoleTail) poll() {
	f, err := os.Open(c.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(c.off, io.SeekStart); err != nil {
		return
	}
	n, _ := io.Copy(&c.text, io.LimitReader(f, 8<<20))
	c.off += n
}

// waitReady watches v's boot until the guest is ready, recording the boot
// timings from t0 (when the VMM was spawned). It fails fast on a kernel
// panic, a KVM failure or the VMM exiting, quoting the console.
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
	fail := func(reason string, crashed bool) error {
		con.poll()
		return &BootError{Reason: reason, Crashed: crashed, Console: quoteConsole(con.text.String(), 15)}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fail(fmt.Sprintf("the guest was not ready after %v (%s)", timeout, s.waitingFor(v)), false)
		case <-sshUp:
			v.State.Boot.Ready = time.Since(t0)
			return nil
		case <-tick.C:
		}
		con.poll()
		log := con.text.String()
		b := &v.State.Boot
		if b.Kernel == 0 && strings.Contains(log, "Linux version") {
			b.Kernel = time.Since(t0)
		}
		if b.Init == 0 && initRE.MatchString(log) {
			b.Init = time.Since(t0)
		}
		alive := vmmAlive(v.State)
		if !alive {
			// Read what the VMM wrote before it died.
			con.poll()
			log = con.text.String()
		}
		if l := panicLine(log); l != "" {
			return fail("the guest kernel panicked: "+strings.TrimSpace(l), true)
		}
		if l := kvmRE.FindString(log); l != "" {
			return fail("KVM failed: "+strings.TrimSpace(l)+" ("+kvmHint+")", true)
		}
		if !alive {
			reason, crashed := crashReason(log)
			return fail("the VMM exited during boot: "+reason, crashed)
		}
		if v.Config.Ready == ReadyConsole && consoleReady(v.Config.ReadyMarker, log) {
			b.Ready = time.Since(t0)
			return nil
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
		return "waiting for its SSH server on " + v.sshAddr() + "; if the image has none, create the VM with --ready console"
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
