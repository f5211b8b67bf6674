// Package consolerelay gives a VMM whose serial console is its own stdio
// (Firecracker) the console QEMU has built in: a unix socket to attach a
// terminal to, and a log file that keeps everything the guest printed.
//
// Start allocates a pseudo-terminal, hands its controlling side to a small
// detached relay process (banger running Serve, see the cli's hidden
// "internal console-relay" command) and returns the terminal side for the
// VMM's stdin, stdout and stderr. The relay appends all output to the log,
// copies it to the one attached client, and writes the client's keys to
// the guest. It exits by itself when the terminal hangs up, that is when
// the VMM has exited, so no relay outlives its VM.
package consolerelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// The relay process inherits the pty's controlling side and the listening
// socket as these descriptors.
const (
	masterFD   = 3
	listenerFD = 4
)

// BusyMessage is what a second client gets before the relay hangs up on it.
const BusyMessage = "banger: another session is attached to this console\r\n"

// Relay is a running relay process.
type Relay struct {
	proc   *vmmproc.Proc
	socket string
}

// Start listens on socket, allocates a pseudo-terminal and spawns argv
// with logPath appended (a command that runs Main(logPath)) detached,
// holding the terminal's controlling side and the listener; it appends the
// console output, and its own messages, to logPath. It returns the terminal side for
// the VMM: pass it as the VMM's stdin, stdout and stderr, then close it.
// A socket nothing answers on (a previous run's) is replaced; one that
// answers is an error.
func Start(ctx context.Context, argv []string, socket, logPath string) (*Relay, *os.File, error) {
	ln, err := listen(ctx, socket)
	if err != nil {
		return nil, nil, err
	}
	lnFile, err := ln.File()
	_ = ln.Close() // the relay's copy keeps listening; the socket file stays
	if err != nil {
		return nil, nil, fmt.Errorf("console socket %s: %w", socket, err)
	}
	defer lnFile.Close()
	master, tty, err := openPTY()
	if err != nil {
		_ = os.Remove(socket)
		return nil, nil, err
	}
	defer master.Close()
	argv = append(argv[:len(argv):len(argv)], logPath)
	p, err := vmmproc.SpawnWith(argv, logPath, vmmproc.Options{ExtraFiles: []*os.File{master, lnFile}})
	if err != nil {
		tty.Close()
		_ = os.Remove(socket)
		return nil, nil, fmt.Errorf("starting the console relay: %w", err)
	}
	return &Relay{proc: p, socket: socket}, tty, nil
}

// listen creates the unix socket, replacing a stale one.
func listen(ctx context.Context, socket string) (*net.UnixListener, error) {
	if err := vmm.ClearStaleSocket(ctx, "console socket", socket); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	return ln, nil
}

// openPTY allocates a pseudo-terminal in raw mode: no echo, no line
// editing, no newline translation, no signals, so the guest's bytes pass
// unchanged both ways.
func openPTY() (master, tty *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("allocating a pseudo-terminal for the console: %w", err)
	}
	fail := func(what string, err error) (*os.File, *os.File, error) {
		master.Close()
		return nil, nil, fmt.Errorf("console pseudo-terminal: %s: %w", what, err)
	}
	// The ioctls need the descriptor itself; it stays blocking, which
	// is what the relay process wants anyway.
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return fail("unlocking", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		return fail("numbering", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail("opening", err)
	}
	if _, err := term.MakeRaw(int(tty.Fd())); err != nil {
		tty.Close()
		return fail("raw mode", err)
	}
	return master, tty, nil
}

// Wait waits up to timeout for the relay to exit, which it does once the
// VMM is gone and the output it left is in the log. It reports whether
// the relay exited.
func (r *Relay) Wait(timeout time.Duration) bool { return r.proc.Wait(timeout) }

// Kill ends the relay at once.
func (r *Relay) Kill() { r.proc.Kill() }

// Close ends the relay of a VMM that failed to start: it gives the relay
// up to drain to log the VMM's last output and exit (it does once the VMM
// is gone), kills it after that, and removes the socket.
func (r *Relay) Close(drain time.Duration) {
	if !r.Wait(drain) {
		r.Kill()
	}
	_ = os.Remove(r.socket)
}

// PID is the relay's process id.
func (r *Relay) PID() int { return r.proc.PID() }

// Main is the body of the relay process that Start spawns: it serves the
// descriptors Start passed, appending the output to logPath, and returns
// when the VMM is gone, or when ctx ends (the relay was told to stop).
func Main(ctx context.Context, logPath string) error {
	if _, err := unix.IoctlGetUint32(masterFD, unix.TIOCGPTN); err != nil {
		return errors.New("console relay: descriptor 3 is not a pseudo-terminal: the relay is started by banger, not by hand")
	}
	master := os.NewFile(masterFD, "console pty")
	lnFile := os.NewFile(listenerFD, "console socket")
	ln, err := net.FileListener(lnFile)
	lnFile.Close()
	if err != nil {
		return fmt.Errorf("console relay: socket: %w", err)
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("console relay: %w", err)
	}
	defer log.Close()
	done := make(chan error, 1)
	go func() { done <- Serve(master, ln, log) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// A read of the terminal cannot be interrupted; the process
		// exits with the goroutine still in it.
		return ctx.Err()
	}
}

// Serve relays between console, the controlling side of the VMM's
// terminal, and the clients of ln, one at a time (others are told so and
// dropped), appending all output to log. It returns once console reports
// that the terminal hung up (every holder of its other side, i.e. the
// VMM, closed it); ln and the client are closed then.
func Serve(console io.ReadWriter, ln net.Listener, log io.Writer) error {
	s := &server{console: console}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		s.accept(ln)
	}()
	var logErr error
	buf := make([]byte, 32<<10)
	for {
		n, err := console.Read(buf)
		if n > 0 {
			if _, werr := log.Write(buf[:n]); werr != nil && logErr == nil {
				// Keep relaying to the client: a full disk must not
				// take the console down with the log.
				logErr = werr
			}
			s.send(buf[:n])
		}
		if err != nil {
			break // EIO: the VMM closed the terminal, i.e. exited
		}
	}
	_ = ln.Close()
	<-accepted
	s.drop(nil)
	if logErr != nil {
		return fmt.Errorf("console relay: writing the console log: %w", logErr)
	}
	return nil
}

// clientWriteTimeout bounds one write to a client: a client that stops
// reading is dropped rather than stall the guest's serial output.
const clientWriteTimeout = 2 * time.Second

type server struct {
	console io.Writer
	mu      sync.Mutex
	client  net.Conn
}

func (s *server) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		busy := s.client != nil
		if !busy {
			s.client = c
		}
		s.mu.Unlock()
		if busy {
			_ = c.SetWriteDeadline(time.Now().Add(clientWriteTimeout))
			_, _ = io.WriteString(c, BusyMessage)
			_ = c.Close()
			continue
		}
		go s.input(c)
	}
}

// input writes what client c types to the guest until c hangs up.
func (s *server) input(c net.Conn) {
	_, _ = io.Copy(s.console, c)
	s.drop(c)
}

// send copies guest output to the attached client, if any.
func (s *server) send(b []byte) {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(clientWriteTimeout))
	if _, err := c.Write(b); err != nil {
		s.drop(c)
	}
}

// drop closes client c (nil: whichever is attached) and frees the slot.
func (s *server) drop(c net.Conn) {
	s.mu.Lock()
	if c == nil {
		c = s.client
	}
	if s.client == c {
		s.client = nil
	}
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}
