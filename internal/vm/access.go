package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/sshkey"
)

// notRunning is the error for commands that need a running VM.
func notRunning(v *VM) error {
	msg := fmt.Sprintf("VM %q is not running (status %s", v.Name(), v.State.Status)
	if v.State.Reason != "" {
		msg += ": " + v.State.Reason
	}
	return fmt.Errorf("%s) (hint: start it with \"banger vm start %s\")", msg, v.Name())
}

// SSH returns how to reach the running VM's SSH server with banger's key.
func (s *Store) SSH(name string) (*guest.SSH, error) {
	v, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	if !v.State.Status.active() {
		return nil, notRunning(v)
	}
	addr := v.sshAddr()
	if addr == "" {
		return nil, &VMError{Name: name, Err: ErrNoSSHNetwork}
	}
	kp, err := sshkey.Ensure(s.Layout.SSHDir())
	if err != nil {
		return nil, err
	}
	return &guest.SSH{Addr: addr, KeyPath: kp.PrivatePath, KnownHosts: v.KnownHosts(), Name: name}, nil
}

// ErrConsoleBusy is returned when another session holds a VM's console.
var ErrConsoleBusy = errors.New("the console is attached in another session")

// ConsoleOptions tune Console.
type ConsoleOptions struct {
	// FromBoot writes the console's output of the current boot so far
	// before the live output, with nothing lost or repeated between
	// them: out is then fed from the console log, which records all
	// the guest writes, rather than from the console socket, which
	// carries only what is written while a session is attached.
	FromBoot bool
}

// consolePoll is how often a FromBoot session reads what the console log
// gained.
const consolePoll = 20 * time.Millisecond

// Console attaches in and out to the running VM's serial console until
// the VM stops, the user detaches (guest.DetachKey) or ctx ends. One
// session at a time may attach.
func (s *Store) Console(ctx context.Context, name string, in io.Reader, out io.Writer, o ConsoleOptions) (detached bool, err error) {
	v, err := s.Get(name)
	if err != nil {
		return false, err
	}
	if !v.State.Status.active() {
		if o.FromBoot {
			// Stopped before the session began: its boot's output is all
			// there is to show.
			return false, copyBoot(v, out)
		}
		return false, notRunning(v)
	}
	if v.State.ConsoleSocket == "" {
		return false, fmt.Errorf("VM %q runs on %s, which has no attachable console (hint: \"banger vm logs -f %s\" follows its output)", name, v.Config.VMM, name)
	}
	l, err := lockfile.TryLock(filepath.Join(v.Dir, "console.lock"))
	if errors.Is(err, lockfile.ErrBusy) {
		return false, fmt.Errorf("VM %q: %w", name, ErrConsoleBusy)
	}
	if err != nil {
		return false, err
	}
	defer l.Unlock()
	// A guest that powers off halts without ending the VMM; end it then,
	// which closes the console and so the session.
	wctx, stop := context.WithCancel(ctx)
	watched := make(chan struct{})
	defer func() { stop(); <-watched }()
	go func() {
		defer close(watched)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if guestHalted(v) {
					s.reconcile(v)
					return
				}
			}
		}
	}()
	if o.FromBoot {
		f, err := openBoot(v)
		if err != nil {
			return false, err
		}
		defer f.Close()
		followed := make(chan struct{})
		end := make(chan struct{})
		go func(w io.Writer) {
			defer close(followed)
			t := time.NewTicker(consolePoll)
			defer t.Stop()
			for {
				_, _ = io.Copy(w, f)
				select {
				case <-end:
					_, _ = io.Copy(w, f) // what came last
					return
				case <-t.C:
				}
			}
		}(out)
		defer func() { close(end); <-followed }()
		out = io.Discard // the socket's copy of what the log has
	}
	detached, err = guest.AttachConsole(ctx, v.State.ConsoleSocket, in, out)
	if err == nil && !detached {
		// The VMM closed the console because it is exiting; let it
		// finish, so that what the caller runs next sees the VM stopped.
		v.State.Process().WaitExit(5 * time.Second)
	}
	return detached, err
}

// openBoot opens v's console log at the start of its current (or last)
// boot.
func openBoot(v *VM) (*os.File, error) {
	f, err := os.Open(v.ConsoleLog())
	if err != nil {
		return nil, fmt.Errorf("reading the console log of VM %q: %w", v.Name(), err)
	}
	if _, err := f.Seek(v.State.ConsoleOffset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("reading the console log of VM %q: %w", v.Name(), err)
	}
	return f, nil
}

// copyBoot copies v's console output of its current (or last) boot to w.
func copyBoot(v *VM, w io.Writer) error {
	f, err := openBoot(v)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
