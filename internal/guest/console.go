package guest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/term"
)

// DetachKey is the byte that detaches from a console session: Ctrl-]
// (as in telnet and virsh console).
const DetachKey = 0x1d

// DetachKeyName is DetachKey as users type it.
const DetachKeyName = "Ctrl-]"

// AttachConsole joins in and out to the serial console behind the unix
// socket until the VMM closes it (the VM stopped), the user types
// DetachKey, or ctx ends. When in is a terminal it is put in raw mode, so
// keys such as Ctrl-C go to the guest. The end of in does not end the
// session: output keeps flowing until the VM stops. detached reports that
// the user detached.
func AttachConsole(ctx context.Context, socket string, in io.Reader, out io.Writer) (detached bool, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return false, fmt.Errorf("connecting to the console socket %s: %w", socket, err)
	}
	defer conn.Close()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return false, fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		defer func() { _ = term.Restore(int(f.Fd()), old) }()
	}
	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, conn)
		outDone <- err
	}()
	detach := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := in.Read(buf)
			if i := bytes.IndexByte(buf[:n], DetachKey); i >= 0 {
				_, _ = conn.Write(buf[:i])
				close(detach)
				return
			}
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-detach:
		return true, nil
	case err := <-outDone:
		return false, err
	}
}
