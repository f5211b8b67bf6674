package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/vm"
)

// Reasons of the events (and pod status) saying why a pod's VM could not
// be had.
const (
	// ReasonKernelMissing: the kernel the pod's image boots is not
	// installed.
	ReasonKernelMissing = "KernelMissing"
	// ReasonOutOfMemory: the host has less memory available than the pod
	// asks for.
	ReasonOutOfMemory = "OutOfMemory"
	// ReasonUnsupportedSpec: the pod has more than one container or init
	// containers, which a pod of one microVM cannot run.
	ReasonUnsupportedSpec = "UnsupportedSpec"
	// ReasonImageWarmed (normal): this pod's image was warmed for it.
	ReasonImageWarmed = "ImageWarmed"
	// ReasonWarmFailed (a warning only; the pod boots cold): the image's
	// warm snapshot could not be made.
	ReasonWarmFailed = "WarmFailed"
	// ReasonPortsUnreachable (a warning only): the pod declares container
	// ports but its VM is on user networking, where the host cannot reach
	// them.
	ReasonPortsUnreachable = "PortsUnreachable"
	// ReasonVolumesNotMounted (a warning only): the container mounts
	// volumes of kinds the node does not provide in the guest.
	ReasonVolumesNotMounted = "VolumesNotMounted"
)

// startVM gets the pod's VM running: created from its container image's
// source unless it exists, started unless it runs. A VM already running
// is adopted (banger node restarted). Before a VM is created its volumes
// must be readable (kept in r.vols) and its kernel installed, before one
// starts the host must have the memory it
// asks for; with warm starts on, an image's VMs restore its warm
// snapshot, made here when none fits. On failure it ends the pod as
// Failed, with an event saying why, and returns nil. script is the main
// process's script when the source was asked (a VM created here), else "".
// c, when not nil, is the SSH connection a restore opened and handed over
// (user networking), which the caller uses and closes instead of making
// its own.
func (p *pods) startVM(ctx context.Context, r *podRun) (v *vm.VM, script string, c *ssh.Client) {
	ctr := &r.pod.Spec.Containers[0]
	v, err := p.store.Get(r.vm)
	if err != nil && !errors.Is(err, vm.ErrNotFound) {
		p.fail(r, "VMBroken", err)
		return nil, "", nil
	}
	if v != nil && v.SSHAddr() != "" {
		return v, "", nil // adopted
	}
	_, mem := podResources(r.pod)
	if v != nil {
		mem = v.Config.MemoryMiB
	} else {
		// A new VM's volumes are read first: one that cannot be had fails
		// the pod before a VM is made, as a kubelet makes no container
		// then.
		files, left, err := p.podVolumes(ctx, r.pod)
		if err != nil {
			if ctx.Err() == nil {
				p.fail(r, ReasonFailedMount, err)
			}
			return nil, "", nil
		}
		r.vols = &podVols{files: files, left: left}
	}
	if err := p.checkMemory(mem); err != nil {
		p.fail(r, ReasonOutOfMemory, err)
		return nil, "", nil
	}
	if v == nil {
		img, err := p.source(ctx, ctr.Image)
		if err != nil {
			p.fail(r, "ImageBuildFailed", fmt.Errorf("container image %s: %w", ctr.Image, err))
			return nil, "", nil
		}
		if script, err = mainScript(r.pod, ctr, img.Config, guestPodDir); err != nil {
			p.fail(r, "InvalidSpec", err)
			return nil, "", nil
		}
		o := img.CreateOptions
		o.Name, o.Net, o.Ready = r.vm, p.net, vm.ReadySSH
		o.CPUs, o.MemoryMiB = podResources(r.pod)
		if err := p.checkKernel(o); err != nil {
			p.fail(r, ReasonKernelMissing, err)
			return nil, "", nil
		}
		if p.warm != nil && o.Image != "" {
			warmed := func(man *snapshot.Manifest, took time.Duration) {
				p.event(r, corev1.EventTypeNormal, ReasonImageWarmed, fmt.Sprintf(
					"warmed image %s in %s (%d CPU, %dM, %s networking): its pods asking for the same restore it instead of booting",
					o.Image, took.Round(time.Millisecond), man.CPUs, man.MemoryMiB, man.Net))
			}
			if err := p.warm.ensure(ctx, o, warmed); err != nil {
				p.event(r, corev1.EventTypeWarning, ReasonWarmFailed, fmt.Sprintf("%v; the pod's VM boots cold", err))
			}
			// Shared until the VM has restored: see warmer.lock.
			l := p.warm.lock(o.Image)
			l.RLock()
			defer l.RUnlock()
		}
		if _, err := p.store.Create(ctx, o); err != nil {
			if ctx.Err() != nil {
				return nil, "", nil // the pod was deleted meanwhile
			}
			reason := "VMCreateFailed"
			if errors.Is(err, kernelstore.ErrNotInstalled) {
				reason = ReasonKernelMissing
			}
			p.fail(r, reason, err)
			return nil, "", nil
		}
	}
	v, err = p.store.Start(ctx, r.vm, vm.StartOptions{KeepSSH: &c})
	if err != nil {
		if ctx.Err() == nil {
			p.fail(r, "VMStartFailed", err)
		}
		return nil, "", nil
	}
	if v.Config.Net == vm.NetUser {
		p.warnPorts(r)
	}
	return v, script, c
}

// checkMemory refuses to start a VM of memMiB when the host has less
// memory available.
func (p *pods) checkMemory(memMiB int) error {
	avail, err := p.memAvailable()
	if err != nil {
		return nil // a host that does not say is not refused
	}
	if int64(memMiB)<<20 > avail {
		return fmt.Errorf("the pod asks for %d MiB of memory, the host has %d MiB available (MemAvailable in /proc/meminfo) (hint: lower the pod's memory limit, or free memory on the node)", memMiB, avail>>20)
	}
	return nil
}

// checkKernel says which kernel a VM created with o would boot, and how
// to install it, when it is not installed.
func (p *pods) checkKernel(o vm.CreateOptions) error {
	kernel, what := o.Kernel, "the pod's VM boots"
	if kernel == "" && o.Image != "" {
		m, err := image.New(p.store.Layout.ImagesDir()).Get(o.Image)
		if err != nil {
			return nil // Create says what is wrong with the image
		}
		kernel, what = m.KernelRef, fmt.Sprintf("image %s boots", o.Image)
	}
	if kernel == "" {
		return nil
	}
	if _, err := kernelstore.New(p.store.Layout.KernelsDir).Get(kernel); errors.Is(err, kernelstore.ErrNotInstalled) {
		return fmt.Errorf("%s kernel %s: %w", what, kernel, err)
	}
	return nil
}

// warnPorts records that the pod's container ports cannot be reached
// from the host: its VM is on QEMU's user network, whose guest address
// is the same for every VM and private to it.
func (p *pods) warnPorts(r *podRun) {
	var ports []string
	for _, c := range r.pod.Spec.Containers {
		for _, cp := range c.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", cp.ContainerPort, cmp.Or(string(cp.Protocol), "TCP")))
		}
	}
	if len(ports) == 0 {
		return
	}
	p.event(r, corev1.EventTypeWarning, ReasonPortsUnreachable, fmt.Sprintf(
		"container port(s) %s cannot be reached from the host or the cluster: the pod's VM is on user networking, where its address is private to it (hint: run banger node with --net tap)",
		strings.Join(ports, ", ")))
}

// volumeKind names the kind of volume s is, as the pod spec spells it.
func volumeKind(s corev1.VolumeSource) string {
	switch {
	case s.EmptyDir != nil:
		return "emptyDir"
	case s.ConfigMap != nil:
		return "configMap"
	case s.Secret != nil:
		return "secret"
	case s.Projected != nil:
		return "projected"
	case s.HostPath != nil:
		return "hostPath"
	case s.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case s.DownwardAPI != nil:
		return "downwardAPI"
	}
	return "volume"
}

// event records an event about r's pod.
func (p *pods) event(r *podRun, typ, reason, msg string) {
	if p.recorder != nil {
		p.recorder.Event(r.pod, typ, reason, msg)
	}
}
