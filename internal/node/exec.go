package node

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"golang.org/x/crypto/ssh"
	utilexec "k8s.io/utils/exec"

	"github.com/thaloco/banger/internal/guest"
)

// RunInContainer runs cmd in the pod's guest over SSH, on a terminal when
// one is asked for (kubectl exec -t). A command that exits non-zero is a
// CodeExitError, which the kubelet API reports as the exit code.
func (p *pods) RunInContainer(ctx context.Context, ns, name, _ string, cmd []string, attach api.AttachIO) error {
	c, err := p.connectPod(ctx, ns, name)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	stdout, stderr := orDiscard(attach.Stdout()), orDiscard(attach.Stderr())
	// The command is an argument vector, as with a kubelet: each word
	// quoted, a single one no shell line. It runs as the container's user,
	// as the main process does (user.sh is there when that is not root).
	us := guestPodDir + "/" + userScriptName
	argv := guest.QuoteArgs(cmd)
	line := "if [ -e " + us + " ]; then exec /bin/sh " + us + " " + argv + "; else exec " + argv + "; fi"
	var code int
	if attach.TTY() {
		code, err = runTerminal(ctx, c, line, attach, stdout)
	} else {
		code, err = guest.Run(ctx, c, line, attach.Stdin(), stdout, stderr)
	}
	if err != nil {
		return fmt.Errorf("running %s in pod %s/%s: %w", argv, ns, name, err)
	}
	if code != 0 {
		// Returned as is: the kubelet API tells an exit code by the
		// error's type, not through a wrapped chain.
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// firstSizeWait is how long a terminal waits for the client's size
// before its command starts: kubectl sends it as soon as the stream is
// up, and a command that starts first would see 80x24.
const firstSizeWait = time.Second

// runTerminal runs command on a guest terminal sized and resized as the
// client's (attach.Resize).
func runTerminal(ctx context.Context, c *ssh.Client, command string, attach api.AttachIO, stdout io.Writer) (int, error) {
	t := guest.Terminal{}
	sizes := attach.Resize()
	if sizes != nil {
		wait := time.NewTimer(firstSizeWait)
		select {
		case s, ok := <-sizes:
			if ok {
				t.Width, t.Height = int(s.Width), int(s.Height)
			}
		case <-wait.C:
		case <-ctx.Done():
		}
		wait.Stop()
		resize := make(chan guest.WindowSize)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case s, ok := <-sizes:
					if !ok {
						return
					}
					select {
					case resize <- guest.WindowSize{Width: int(s.Width), Height: int(s.Height)}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
		t.Resize = resize
	}
	return guest.RunTerminal(ctx, c, command, t, attach.Stdin(), stdout)
}

// AttachToContainer streams the main process's output from now on
// (kubectl attach), across its restarts, until the client goes or the
// VM stops. The process reads no input (its stdin is /dev/null), so an
// attach with stdin is refused, as a kubelet refuses it for a container
// without stdin.
func (p *pods) AttachToContainer(ctx context.Context, ns, name, ctr string, attach api.AttachIO) error {
	if attach.Stdin() != nil {
		return errdefs.InvalidInputf("pod %s/%s: container %s reads no input (its stdin is /dev/null) (hint: attach without -i, or use kubectl exec -i)", ns, name, ctr)
	}
	c, err := p.connectPod(ctx, ns, name)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	stdout := orDiscard(attach.Stdout())
	// -F follows main.log by name: a restart moves it to previous.log
	// and the next run writes a new one.
	_, err = guest.Run(ctx, c, "tail -n 0 -F "+guestPodDir+"/"+mainLog+" 2>/dev/null", nil, stdout, io.Discard)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("attaching to pod %s/%s: %w", ns, name, err)
	}
	return nil
}

// orDiscard is w, or io.Discard when the client did not ask for that
// stream.
func orDiscard(w io.WriteCloser) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
