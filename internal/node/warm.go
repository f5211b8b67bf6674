package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/vm"
)

// warmer makes the warm snapshots pods' VMs restore instead of booting
// (vm.Store.WarmImage), at most once per image in the node's life: with
// the CPUs, memory and network of the first pod that asks, unless a warm
// snapshot that fits that pod exists already. An image has one warm
// snapshot, so pods of it asking for other resources boot cold rather
// than replace it back and forth.
type warmer struct {
	store *vm.Store
	group singleflight.Group

	mu    sync.Mutex
	tried map[string]bool          // images warmed (or tried) by this node
	locks map[string]*sync.RWMutex // per image: its warm snapshot is being replaced
}

// lock is image's lock: a warm holds it to replace the snapshot, a pod
// holds it shared from creating its VM until the VM has restored, since
// a VM restores the snapshot named in its config when it first starts.
func (w *warmer) lock(image string) *sync.RWMutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.locks == nil {
		w.locks = map[string]*sync.RWMutex{}
	}
	l, ok := w.locks[image]
	if !ok {
		l = &sync.RWMutex{}
		w.locks[image] = l
	}
	return l
}

// triedImage says whether this node has warmed image, or is warming it.
func (w *warmer) triedImage(image string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tried[image]
}

// ensure makes o.Image's warm snapshot for a VM created with o, unless
// one fits o already or this node warmed the image before; callers asking
// at the same time share one warm, and only the one whose call made it
// gets warmed called. An error is the warm's, which leaves the pod to
// boot cold.
func (w *warmer) ensure(ctx context.Context, o vm.CreateOptions, warmed func(*snapshot.Manifest, time.Duration)) error {
	if o.Image == "" {
		return nil
	}
	if snap, _ := w.store.WarmSnapshotFor(o); snap != nil {
		return nil
	}
	_, err, _ := w.group.Do(o.Image, func() (any, error) {
		w.mu.Lock()
		tried := w.tried[o.Image]
		if w.tried == nil {
			w.tried = map[string]bool{}
		}
		w.tried[o.Image] = true
		w.mu.Unlock()
		if tried {
			return nil, nil
		}
		l := w.lock(o.Image)
		l.Lock()
		defer l.Unlock()
		// Other pods may wait on this warm: one pod going away does not
		// cancel it.
		t0 := time.Now()
		man, err := w.store.WarmImage(context.WithoutCancel(ctx), o.Image, vm.WarmOptions{
			CPUs: o.CPUs, MemoryMiB: o.MemoryMiB, VMM: o.VMM, Net: o.Net, HostAccess: o.HostAccess,
		})
		if err != nil {
			return nil, fmt.Errorf("warming image %s: %w", o.Image, err)
		}
		if man.Ready != vm.ReadySSH {
			return nil, fmt.Errorf("warming image %s: its snapshot waits for %s, pods need SSH (the image has no SSH server)", o.Image, man.Ready)
		}
		if warmed != nil {
			warmed(man, time.Since(t0))
		}
		return nil, nil
	})
	return err
}
