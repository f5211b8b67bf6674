package guest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// Shell runs an interactive login shell in the guest. When stdin is a
// terminal it is put in raw mode and the guest gets a pseudo-terminal of
// the same size (resized along with it); otherwise the shell reads stdin
// as a plain stream. It returns the shell's exit status.
func Shell(ctx context.Context, c *ssh.Client, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	sess, err := c.NewSession()
	if err != nil {
		return 0, fmt.Errorf("opening SSH session: %w", err)
	}
	defer func() { _ = sess.Close() }()
	sess.Stdout, sess.Stderr = stdout, stderr
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		w, h, _ := term.GetSize(fd) // unknown: requestPty's 80x24
		tt := os.Getenv("TERM")
		if tt == "" {
			tt = "xterm-256color"
		}
		if err := requestPty(sess, &Terminal{Term: tt, Width: w, Height: h}); err != nil {
			return 0, err
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return 0, fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		defer func() { _ = term.Restore(fd, old) }()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if w, h, err := term.GetSize(fd); err == nil {
					_ = sess.WindowChange(h, w)
				}
			}
		}()
	}
	in, err := sess.StdinPipe()
	if err != nil {
		return 0, err
	}
	if err := sess.Shell(); err != nil {
		return 0, fmt.Errorf("starting the guest shell: %w", err)
	}
	go copyStdin(in, stdin)
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	defer stop()
	return exitStatus(ctx, sess.Wait())
}
