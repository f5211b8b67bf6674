package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// PortForward joins stream (one connection of kubectl port-forward) to
// port on the pod's guest: the guest's SSH server connects to
// 127.0.0.1:port inside the guest, as a kubelet connects inside the pod's
// network namespace, so ports the pod serves only on its loopback are
// reachable too. It returns when either side has finished.
func (p *pods) PortForward(ctx context.Context, ns, name string, port int32, stream io.ReadWriteCloser) error {
	defer func() { _ = stream.Close() }()
	r, err := p.lookup(ns, name)
	if err != nil {
		return err
	}
	c, err := p.connect(ctx, r.vm)
	if err != nil {
		return fmt.Errorf("port forward to pod %s/%s: %w", ns, name, err)
	}
	defer func() { _ = c.Close() }()
	conn, err := c.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("port forward to pod %s/%s: connecting to port %d in VM %s: %w", ns, name, port, r.vm, err)
	}
	defer func() { _ = conn.Close() }()

	sent, received := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		// The client finished sending: pass the end on, keep reading.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		sent <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		received <- err
	}()
	select {
	case err = <-received: // the guest's side ended
	case err = <-sent:
		if err == nil { // the client's side ended: wait for the answer
			select {
			case err = <-received:
			case <-ctx.Done():
			}
		}
	case <-ctx.Done():
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("port forward to pod %s/%s, port %d: %w", ns, name, port, err)
	}
	return nil
}
