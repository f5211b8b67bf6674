// Package guest reaches into running guests: commands and shells over SSH
// with banger's key, and the serial console through the VMM's console
// socket.
package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSH says how to reach a guest's SSH server.
type SSH struct {
	Addr    string // host:port
	User    string // "root" when empty
	KeyPath string // OpenSSH private key
	// KnownHosts pins the guest's host key: the first connection records
	// it there, later ones must present the same key. Empty accepts any.
	KnownHosts string
	// Name names the VM in errors.
	Name string
	// Dial, if set, opens the connection instead of a net.Dialer (e.g.
	// from inside another network namespace).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Connect opens an SSH connection, retrying until wait passes while the
// guest is still coming up (refused connections, servers not yet
// greeting). Authentication failures and host key mismatches fail at once.
func (s *SSH) Connect(ctx context.Context, wait time.Duration) (*ssh.Client, error) {
	key, err := os.ReadFile(s.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("reading banger's SSH key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("parsing banger's SSH key %s: %w", s.KeyPath, err)
	}
	user := s.User
	if user == "" {
		user = "root"
	}
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: s.checkHostKey,
		Timeout:         5 * time.Second,
	}
	deadline := time.Now().Add(wait)
	for {
		c, err := s.dial(ctx, cfg)
		if err == nil {
			return c, nil
		}
		var perm *permanentError
		if errors.As(err, &perm) || strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("SSH to VM %q at %s: %w (hint: the image must trust banger's key %s.pub for %s)", s.Name, s.Addr, err, s.KeyPath, user)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("SSH to VM %q at %s: %w", s.Name, s.Addr, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *SSH) dial(ctx context.Context, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	dial := (&net.Dialer{Timeout: cfg.Timeout}).DialContext
	if s.Dial != nil {
		dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		dial = func(_ context.Context, network, addr string) (net.Conn, error) { return s.Dial(dctx, network, addr) }
	}
	conn, err := dial(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, chans, reqs, err := ssh.NewClientConn(conn, s.Addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// permanentError is a failure retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// checkHostKey pins the guest's host key on first use.
func (s *SSH) checkHostKey(_ string, _ net.Addr, key ssh.PublicKey) error {
	if s.KnownHosts == "" {
		return nil
	}
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(key))
	known, err := os.ReadFile(s.KnownHosts)
	if errors.Is(err, fs.ErrNotExist) {
		return os.WriteFile(s.KnownHosts, append(line, '\n'), 0o644)
	}
	if err != nil {
		return &permanentError{err}
	}
	if !bytes.Equal(bytes.TrimSpace(known), line) {
		return &permanentError{fmt.Errorf("the guest's SSH host key changed (it is pinned in %s; delete that file if the change is expected)", s.KnownHosts)}
	}
	return nil
}

// Run runs command in the guest and returns its exit status. stdin (if
// not nil) is copied to the command without waiting for it to end, so a
// terminal that never sends EOF does not keep Run waiting. A command
// killed by a signal reports 128+signal, like a shell.
func Run(ctx context.Context, c *ssh.Client, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return run(ctx, c, command, nil, stdin, stdout, stderr)
}

// Terminal is the pseudo-terminal RunTerminal asks the guest for.
type Terminal struct {
	Term          string // $TERM in the guest; "xterm" when empty
	Width, Height int    // the size in columns and rows; 80x24 when 0
	// Resize, if not nil, carries the terminal's later sizes.
	Resize <-chan WindowSize
}

// WindowSize is a terminal's size in columns and rows.
type WindowSize struct{ Width, Height int }

// RunTerminal is Run with the command on a pseudo-terminal t: its output
// and errors both come out of the terminal, to stdout. (A server that
// still sends errors apart has them dropped: writing them to stdout too
// would write to it from two goroutines.)
func RunTerminal(ctx context.Context, c *ssh.Client, command string, t Terminal, stdin io.Reader, stdout io.Writer) (int, error) {
	return run(ctx, c, command, &t, stdin, stdout, io.Discard)
}

func run(ctx context.Context, c *ssh.Client, command string, t *Terminal, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	sess, err := c.NewSession()
	if err != nil {
		return 0, fmt.Errorf("opening SSH session: %w", err)
	}
	defer func() { _ = sess.Close() }()
	sess.Stdout, sess.Stderr = stdout, stderr
	if t != nil {
		if err := requestPty(sess, t); err != nil {
			return 0, err
		}
	}
	var in io.WriteCloser
	if stdin != nil {
		if in, err = sess.StdinPipe(); err != nil {
			return 0, err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	defer stop()
	if err := sess.Start(command); err != nil {
		return exitStatus(ctx, err)
	}
	if in != nil {
		go copyStdin(in, stdin)
	}
	if t != nil && t.Resize != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case ws, ok := <-t.Resize:
					if !ok {
						return
					}
					_ = sess.WindowChange(ws.Height, ws.Width)
				}
			}
		}()
	}
	return exitStatus(ctx, sess.Wait())
}

// requestPty asks for t on sess, before its command starts.
func requestPty(sess *ssh.Session, t *Terminal) error {
	term, w, h := t.Term, t.Width, t.Height
	if term == "" {
		term = "xterm"
	}
	if w <= 0 || h <= 0 {
		w, h = 80, 24
	}
	if err := sess.RequestPty(term, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return fmt.Errorf("requesting a terminal: %w", err)
	}
	return nil
}

// copyStdin copies stdin to a started session's input, then sends EOF.
// It must not begin before the server accepted the exec or shell request:
// an EOF that arrives first makes a server such as dropbear close the
// session channel, which then fails the request with io.EOF.
func copyStdin(in io.WriteCloser, stdin io.Reader) {
	_, _ = io.Copy(in, stdin)
	_ = in.Close()
}

// exitStatus turns a session's end into an exit code.
func exitStatus(ctx context.Context, err error) (int, error) {
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if sig := ee.Signal(); sig != "" {
			return 128 + signalNumber(sig), nil
		}
		return ee.ExitStatus(), nil
	case errors.As(err, &missing):
		return 255, errors.New("the guest command ended without an exit status")
	}
	return 0, fmt.Errorf("running the guest command: %w", err)
}

// signalNumber maps SSH signal names to Linux numbers (15 if unknown).
func signalNumber(name string) int {
	n := map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9,
		"USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15}[string(name)]
	if n == 0 {
		n = 15
	}
	return n
}

// CommandLine turns the words after "--" into the command line SSH runs.
// A single word is passed as is, so that `vm ssh NAME -- 'ls | wc -l'`
// runs a pipeline; several are quoted one by one (QuoteArgs), so that each
// stays one argument.
func CommandLine(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return QuoteArgs(args)
}

// QuoteArgs quotes each argument for a POSIX shell and joins them.
func QuoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
