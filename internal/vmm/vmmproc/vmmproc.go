// Package vmmproc spawns a VMM process detached from banger: in its own
// session (a Ctrl-C aimed at banger does not reach it), stdin from
// /dev/null, stdout and stderr appended to the VM's console log (or all
// three on a terminal whose output reaches that log some other way). It
// outlives banger; while banger runs, a goroutine reaps it. Later runs
// check it is alive and end it by the pid and start time they recorded
// (ID), and find the VMMs a VM's record lost (Strays).
package vmmproc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/thaloco/banger/internal/logtail"
)

// Proc is a spawned VMM.
type Proc struct {
	cmd     *exec.Cmd
	log     string // console log its stdout and stderr append to
	logFrom int64  // size of log before the spawn: older output is not ours
	done    chan struct{}
	waitErr error // valid once done is closed
}

// Options change how Spawn connects the process.
type Options struct {
	// Terminal, when set, is the process's stdin, stdout and stderr
	// instead of /dev/null and the console log; whoever holds its other
	// end copies the output to the log.
	Terminal *os.File
	// ExtraFiles are inherited as file descriptors 3, 4, ….
	ExtraFiles []*os.File
}

// Spawn starts argv detached, its output appended to consoleLog. It does
// not take a context on purpose: the VMM must outlive the command that
// started it.
func Spawn(argv []string, consoleLog string) (*Proc, error) {
	return SpawnWith(argv, consoleLog, Options{})
}

// SpawnWith is Spawn with Options.
func SpawnWith(argv []string, consoleLog string, o Options) (*Proc, error) {
	f, err := os.OpenFile(consoleLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening console log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("console log: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:noctx // the VMM must outlive ctx and banger
	cmd.Stdout = f
	cmd.Stderr = f
	if o.Terminal != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Terminal, o.Terminal, o.Terminal
	}
	cmd.ExtraFiles = o.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, log: consoleLog, logFrom: st.Size(), done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited (while banger runs).
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error once Done is closed.
func (p *Proc) Err() error { return p.waitErr }

// Wait waits up to timeout for the process to exit and reports whether it
// did.
func (p *Proc) Wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Kill stops a VMM that failed to start properly and reaps it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	p.Wait(5 * time.Second)
}

// Output returns the last n lines the process (and, once it runs, the
// guest) wrote to the console log since the spawn.
func (p *Proc) Output(n int) []string { return logtail.File(p.log, p.logFrom, n) }
