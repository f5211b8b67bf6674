package node

import (
	"context"
	"fmt"
	"io"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"

	"github.com/thaloco/banger/internal/guest"
)

// RunInContainer runs cmd in the pod's guest over SSH.
func (p *pods) RunInContainer(ctx context.Context, ns, name, _ string, cmd []string, attach api.AttachIO) error {
	p.mu.Lock()
	r, ok := p.byKey[podKey(ns, name)]
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFoundf("pod %s/%s is not on this node", ns, name)
	}
	c, err := p.connect(ctx, r.vm)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	stdout, stderr := io.Writer(io.Discard), io.Writer(io.Discard)
	if w := attach.Stdout(); w != nil {
		stdout = w
	}
	if w := attach.Stderr(); w != nil {
		stderr = w
	}
	code, err := guest.Run(ctx, c, guest.CommandLine(cmd), attach.Stdin(), stdout, stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("command terminated with exit code %d", code)
	}
	return nil
}
