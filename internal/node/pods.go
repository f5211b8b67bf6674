package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/vm"
)

// guestPodDir holds the main process's script, log and exit status in the
// guest.
const guestPodDir = "/run/banger-pod"

// mainLog is the main process's output in guestPodDir (and in the VM's
// directory once the pod has ended): of its current run. previousLog is
// the run before's, kept when the process is restarted.
const (
	mainLog     = "main.log"
	previousLog = "previous.log"
	// userScriptName runs a command as the container's user (userScript),
	// when that is not root.
	userScriptName = "user.sh"
)

// launchMain starts the guest's main.sh detached from the SSH session
// that runs it.
const launchMain = "(setsid sh " + guestPodDir + "/main.sh </dev/null >/dev/null 2>&1 &)"

// pollInterval is how often a running pod's main process is checked.
const pollInterval = 2 * time.Second

// Source turns a container image reference into what a VM is created
// from (CreateOptions.Image, or Kernel and Rootfs) and how the image says
// to run it, building a banger image when needed.
type Source func(ctx context.Context, ref string) (Image, error)

// Image is a container image as the node runs it.
type Image struct {
	// CreateOptions say what the pod's VM is created from; the node
	// fills in the rest (name, network, resources).
	vm.CreateOptions
	// Config is the image's entrypoint, cmd, environment and working
	// directory, which the container's own settings override.
	Config image.Config
}

// pods runs pods as microVMs in a banger VM store: one VM per pod.
type pods struct {
	store    *vm.Store
	client   kubernetes.Interface // removes deleted pods from the API (nil: leaves it to virtual-kubelet)
	source   Source
	net      string
	hostIP   string
	recorder record.EventRecorder
	// warm, if not nil, makes the warm snapshots VMs restore.
	warm *warmer
	// memAvailable is the host's available memory in bytes (MemAvailable).
	memAvailable func() (int64, error)
	// backoff is the first restart back-off (defaultBackoff when 0);
	// tests shorten it.
	backoff time.Duration

	mu     sync.Mutex
	byKey  map[string]*podRun // namespace/name
	notify func(*corev1.Pod)
}

// podRun is one pod and the goroutine that runs its VM.
type podRun struct {
	pod *corev1.Pod  // its status is ours; guarded by pods.mu
	rs  restartState // the main process's runs; guarded by pods.mu
	vm  string
	// vols, when not nil, are the pod's volumes, read by startVM before
	// it made the VM (podVolumes); run's goroutine alone uses it.
	vols   *podVols
	cancel context.CancelFunc
	done   chan struct{}
}

func podKey(ns, name string) string { return ns + "/" + name }

// NotifyPods registers the status callback.
func (p *pods) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notify = cb
}

// setStatus changes r's status under the lock and reports the pod.
func (p *pods) setStatus(r *podRun, change func(*corev1.PodStatus)) {
	p.mu.Lock()
	change(&r.pod.Status)
	pod, notify := r.pod.DeepCopy(), p.notify
	p.mu.Unlock()
	if notify != nil {
		notify(pod)
	}
}

// CreatePod starts the pod's VM in the background: building its image,
// creating and booting the VM, starting the main process.
func (p *pods) CreatePod(_ context.Context, pod *corev1.Pod) error {
	if len(pod.Spec.Containers) == 0 {
		return errdefs.InvalidInput("pod has no containers")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &podRun{pod: pod.DeepCopy(), vm: vmName(pod), cancel: cancel, done: make(chan struct{})}
	now := metav1.Now()
	r.pod.Status = corev1.PodStatus{Phase: corev1.PodPending, StartTime: &now, Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}}
	p.mu.Lock()
	if _, ok := p.byKey[podKey(pod.Namespace, pod.Name)]; ok {
		p.mu.Unlock()
		cancel()
		return nil // already running
	}
	p.byKey[podKey(pod.Namespace, pod.Name)] = r
	p.mu.Unlock()
	go func() {
		defer close(r.done)
		p.run(ctx, r)
	}()
	return nil
}

// fail ends r as Failed with reason and message, and a warning event.
func (p *pods) fail(r *podRun, reason string, err error) {
	msg := err.Error()
	if p.recorder != nil {
		p.recorder.Event(r.pod, corev1.EventTypeWarning, reason, msg)
	}
	p.setStatus(r, func(s *corev1.PodStatus) {
		s.Phase, s.Reason, s.Message = corev1.PodFailed, reason, msg
		s.ContainerStatuses = terminated(r, -1, reason, msg)
	})
}

// run brings the pod's VM up and watches its main process.
func (p *pods) run(ctx context.Context, r *podRun) {
	if err := supported(r.pod); err != nil {
		p.fail(r, ReasonUnsupportedSpec, err)
		return
	}
	v, script, c := p.startVM(ctx, r)
	if v == nil {
		return
	}
	if c == nil {
		var err error
		if c, err = p.connect(ctx, r.vm); err != nil {
			p.fail(r, "VMUnreachable", err)
			return
		}
	}
	defer func() { _ = c.Close() }()
	p.runMain(ctx, r, v, c, script)
}

// runMain starts the pod's main process in its VM v, unless the guest
// runs it already (an adopted VM), and watches it. script is the main
// process's script when known (a VM made here), else "": it is made
// again if the guest needs it.
func (p *pods) runMain(ctx context.Context, r *podRun, v *vm.VM, c *ssh.Client, script string) {
	// A VM made here (script known) has not run the script yet: skip the
	// round trip that asks. startMain's own test keeps this safe.
	started, err := 1, error(nil)
	if script == "" {
		started, err = guest.Run(ctx, c, "test -e "+guestPodDir+"/main.sh", nil, io.Discard, io.Discard)
	}
	if err == nil && started != 0 {
		if err := p.writeVolumes(ctx, c, r); err != nil {
			if ctx.Err() == nil {
				p.fail(r, ReasonFailedMount, err)
			}
			return
		}
		err = p.startMain(ctx, c, r.pod, script)
	}
	if err != nil {
		if ctx.Err() == nil {
			p.fail(r, "StartFailed", fmt.Errorf("starting the main process in VM %s: %w", r.vm, err))
		}
		return
	}
	// An adopted VM's runs go on counting from what the last node saved.
	rs, err := loadRestarts(v.Dir)
	if err != nil {
		p.event(r, corev1.EventTypeWarning, "RestartsUnreadable", err.Error())
	}
	if started != 0 || rs.StartedAt.IsZero() {
		rs.StartedAt = time.Now()
		if err := rs.save(v.Dir); err != nil {
			p.event(r, corev1.EventTypeWarning, "RestartsNotSaved", err.Error())
		}
	}
	now := metav1.Now()
	p.setStatus(r, func(s *corev1.PodStatus) {
		r.rs = rs
		s.Phase = corev1.PodRunning
		s.PodIP, s.HostIP = v.GuestIP(), p.hostIP
		if s.PodIP != "" {
			s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
		}
		s.Conditions = append(s.Conditions,
			corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now})
		s.ContainerStatuses = running(r)
	})
	p.watch(ctx, r, c, v.Dir)
}

// startMain writes the main process's script into the guest and starts
// it there, detached from the SSH session. An empty script is made from
// the container and its image's config.
func (p *pods) startMain(ctx context.Context, c *ssh.Client, pod *corev1.Pod, script string) error {
	if script == "" {
		ctr := &pod.Spec.Containers[0]
		// A VM that stopped (a host reboot) lost its /run: its image's
		// config is needed again.
		o, err := p.source(ctx, ctr.Image)
		if err != nil {
			return fmt.Errorf("container image %s: %w", ctr.Image, err)
		}
		if script, err = mainScript(pod, ctr, o.Config, guestPodDir); err != nil {
			return err
		}
	}
	start := "test -e " + guestPodDir + "/main.sh || { mkdir -p " + guestPodDir + " && cat >" + guestPodDir + "/main.sh.tmp && mv " + guestPodDir + "/main.sh.tmp " + guestPodDir + "/main.sh && " + launchMain + " ; }"
	var errb bytes.Buffer
	code, err := guest.Run(ctx, c, start, strings.NewReader(script), io.Discard, &errb)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d: %s", code, strings.TrimSpace(errb.String()))
	}
	return err
}

// connectPod opens an SSH connection to the VM of pod ns/name; an error
// is lookup's (not found) or the connection's.
func (p *pods) connectPod(ctx context.Context, ns, name string) (*ssh.Client, error) {
	r, err := p.lookup(ns, name)
	if err != nil {
		return nil, err
	}
	return p.connect(ctx, r.vm)
}

func (p *pods) connect(ctx context.Context, name string) (*ssh.Client, error) {
	target, err := p.store.SSH(name)
	if err != nil {
		return nil, err
	}
	return target.Connect(ctx, vm.DefaultReadyTimeout)
}

// removeOrphans stops and removes the pod VMs of this store whose pod is
// no longer bound to the node (deleted while no node was running), and
// the throwaway VMs of warms that never ended. The node owns every VM
// named as vmName names them, and the warming VMs of its images.
func (p *pods) removeOrphans(ctx context.Context, c kubernetes.Interface, node string) error {
	list, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", node, err)
	}
	bound := map[string]bool{}
	for i := range list.Items {
		bound[vmName(&list.Items[i])] = true
	}
	ls, err := p.store.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range ls {
		if l.VM == nil {
			continue
		}
		if img, ok := warmingImage(l.VM.Name()); ok {
			// A warm's throwaway VM left by a node that died while it
			// warmed; one this node may be making now is kept.
			if p.warm != nil && p.warm.triedImage(img) {
				continue
			}
		} else if !isPodVM(l.VM.Name()) || bound[l.VM.Name()] || p.running(l.VM.Name()) {
			continue
		}
		name := l.VM.Name()
		if _, err := p.store.Stop(ctx, name, vm.StopOptions{Timeout: 10 * time.Second}); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.store.Remove(ctx, name, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// running says whether a pod of this node has the VM called name.
func (p *pods) running(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.byKey {
		if r.vm == name {
			return true
		}
	}
	return false
}

// stopWatching ends every pod's goroutine, leaving the VMs running.
func (p *pods) stopWatching() {
	p.mu.Lock()
	runs := make([]*podRun, 0, len(p.byKey))
	for _, r := range p.byKey {
		runs = append(runs, r)
	}
	p.notify = nil
	p.mu.Unlock()
	for _, r := range runs {
		r.cancel()
		<-r.done
	}
}

// DeletePod stops the pod's VM (within the pod's grace period, then it is
// killed), removes it and reports the pod terminated.
func (p *pods) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	r, err := p.lookup(pod.Namespace, pod.Name)
	if err != nil {
		return err
	}
	r.cancel()
	<-r.done
	grace := 30 * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if _, err := p.store.Stop(ctx, r.vm, vm.StopOptions{Timeout: grace}); err != nil && !errors.Is(err, vm.ErrNotFound) {
		return fmt.Errorf("stopping the VM of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if err := p.store.Remove(ctx, r.vm, true); err != nil && !errors.Is(err, vm.ErrNotFound) {
		return fmt.Errorf("removing the VM of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	p.setStatus(r, func(s *corev1.PodStatus) {
		if s.Phase != corev1.PodSucceeded && s.Phase != corev1.PodFailed {
			s.Phase, s.Reason = corev1.PodFailed, "Deleted"
			s.ContainerStatuses = terminated(r, 137, "Deleted", "the pod was deleted")
		}
	})
	p.mu.Lock()
	delete(p.byKey, podKey(pod.Namespace, pod.Name))
	p.mu.Unlock()
	// The VM is gone: remove the pod from the API now, as a kubelet does
	// once a pod's containers have stopped. virtual-kubelet would wait out
	// the rest of the grace period first (30 s by default), and kubectl
	// delete with it; it still does if this fails.
	if p.client != nil {
		err := p.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			vklog.G(ctx).Warnf("removing pod %s/%s from the API: %v", pod.Namespace, pod.Name, err)
		}
	}
	return nil
}

// lookup is the run of the pod ns/name, or errdefs' not-found error.
func (p *pods) lookup(ns, name string) (*podRun, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.byKey[podKey(ns, name)]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", ns, name)
	}
	return r, nil
}

func (p *pods) UpdatePod(context.Context, *corev1.Pod) error { return nil }

func (p *pods) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.byKey[podKey(ns, name)]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", ns, name)
	}
	return r.pod.DeepCopy(), nil
}

func (p *pods) GetPodStatus(ctx context.Context, ns, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *pods) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.byKey))
	for _, r := range p.byKey {
		out = append(out, r.pod.DeepCopy())
	}
	return out, nil
}
