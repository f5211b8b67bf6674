package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/thaloco/banger/internal/vm"
)

// startVM gets the pod's VM running: created from its container image's
// source unless it exists, started unless it runs. A VM already running
// is adopted (banger node restarted). On failure it ends the pod as
// Failed, with an event saying why, and returns nil.
func (p *pods) startVM(ctx context.Context, r *podRun) *vm.VM {
	ctr := &r.pod.Spec.Containers[0]
	v, err := p.store.Get(r.vm)
	if errors.Is(err, vm.ErrNotFound) {
		o, err := p.source(ctx, ctr.Image)
		if err != nil {
			p.fail(r, "ImageBuildFailed", fmt.Errorf("container image %s: %w", ctr.Image, err))
			return nil
		}
		o.Name, o.Net, o.Ready = r.vm, p.net, vm.ReadySSH
		o.CPUs, o.MemoryMiB = podResources(r.pod)
		if _, err := p.store.Create(ctx, o); err != nil {
			p.fail(r, "VMCreateFailed", err)
			return nil
		}
	} else if err != nil {
		p.fail(r, "VMBroken", err)
		return nil
	}
	if v == nil || v.SSHAddr() == "" {
		if v, err = p.store.Start(ctx, r.vm, vm.StartOptions{}); err != nil {
			if ctx.Err() == nil {
				p.fail(r, "VMStartFailed", err)
			}
			return nil
		}
	}
	return v
}
