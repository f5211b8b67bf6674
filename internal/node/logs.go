package node

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"

	"github.com/thaloco/banger/internal/guest"
)

// GetContainerLogs is the main process's output: read in the guest while
// it runs, from the copy taken when it ended after.
func (p *pods) GetContainerLogs(ctx context.Context, ns, name, _ string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	p.mu.Lock()
	r, ok := p.byKey[podKey(ns, name)]
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", ns, name)
	}
	v, err := p.store.Get(r.vm)
	if err != nil {
		return nil, err
	}
	if v.SSHAddr() == "" {
		return os.Open(filepath.Join(v.Dir, "main.log"))
	}
	c, err := p.connect(ctx, r.vm)
	if err != nil {
		return nil, err
	}
	cmd := "cat " + guestPodDir + "/main.log"
	if opts.Follow {
		cmd = "tail -n +1 -f " + guestPodDir + "/main.log"
	}
	pr, pw := io.Pipe()
	go func() {
		defer func() { _ = c.Close() }()
		_, err := guest.Run(ctx, c, cmd, nil, pw, io.Discard)
		pw.CloseWithError(err)
	}()
	return pr, nil
}
