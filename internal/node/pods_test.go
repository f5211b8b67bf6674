package node

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kubetest"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/vm"
)

// testImage is the banger image the test source gives for "test/image".
const testImage = "test-busybox"

// testStore is a VM store with the test kernel as "test" and a busybox
// root filesystem running dropbear that trusts the store's key, also
// registered as banger image testImage.
func testStore(t testing.TB) (*vm.Store, Source) {
	t.Helper()
	state := t.TempDir()
	kernels := filepath.Join(state, "kernels")
	guesttest.InstallKernel(t, kernels, "test")
	kp, err := sshkey.Ensure(filepath.Join(state, "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(t.TempDir(), "sshd.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: kp.Public})
	panics := filepath.Join(t.TempDir(), "panics.ext4")
	guesttest.BuildRootfs(t, panics, guesttest.Rootfs{Init: "echo dying; exit 1"})
	env := map[string]string{vm.AccelEnv: ""}
	s := vm.NewWithOptions(paths.Layout{State: state, KernelsDir: kernels}, vm.Options{
		Getenv: func(k string) string { return env[k] },
		Logf:   func(format string, args ...any) { t.Logf("banger: "+format, args...) },
	})
	t.Cleanup(func() {
		ls, _ := s.List()
		for _, l := range ls {
			if l.VM != nil {
				_ = s.Remove(context.Background(), l.VM.Name(), true)
			}
		}
	})
	// The same root filesystem as banger images, as ImageBuilder makes
	// them of container images: one booting the test kernel (its VMs get
	// the image's overlay disk and its warm snapshot), one naming a kernel
	// that is not installed.
	images := image.New(s.Layout.ImagesDir())
	for name, kernel := range map[string]string{testImage: "test", "test-nokernel": "gone-6.12"} {
		if _, err := images.Register(context.Background(), name, rootfs, image.RegisterOptions{KernelRef: kernel}); err != nil {
			t.Fatal(err)
		}
	}
	source := func(_ context.Context, ref string) (Image, error) {
		switch ref {
		case "test/image":
			return Image{CreateOptions: vm.CreateOptions{Image: testImage}}, nil
		case "test/nokernel":
			return Image{CreateOptions: vm.CreateOptions{Image: "test-nokernel"}}, nil
		case "test/busybox":
			return Image{CreateOptions: vm.CreateOptions{Kernel: "test", Rootfs: rootfs}}, nil
		case "test/panics":
			return Image{CreateOptions: vm.CreateOptions{Kernel: "test", Rootfs: panics}}, nil
		case "test/server":
			// The busybox guest, with a config as an OCI image gives one.
			return Image{CreateOptions: vm.CreateOptions{Kernel: "test", Rootfs: rootfs}, Config: serverConfig}, nil
		}
		return Image{}, errors.New("no such image")
	}
	return s, source
}

// testConfig is a node of store's VMs against cp, serving its kubelet API.
func testConfig(t testing.TB, cp *kubetest.ControlPlane, store *vm.Store, source Source) Config {
	host := Resources{CPUMilli: 4000, MemoryBytes: 16 << 30}
	return Config{
		Name: "banger-test", Client: nodeClient(t, cp), Version: "banger-test", VMs: store, Source: source, Net: vm.NetUser,
		NodeIP: "127.0.0.1", ListenAddr: freeAddr(t), ClientCAFile: cp.CAFile,
		host: &host, checks: func() Checks { return Checks{} }, restartBackoff: time.Second,
	}
}

// nodeClient is the node's own client of cp, as banger node makes it: the
// tests' polling through cp.Client does not eat into its rate limit.
func nodeClient(t testing.TB, cp *kubetest.ControlPlane) kubernetes.Interface {
	t.Helper()
	c, err := NewClient(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testPod(name, image string, command ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:      "banger-test",
			RestartPolicy: corev1.RestartPolicyNever,
			Tolerations:   []corev1.Toleration{{Key: Taint.Key, Operator: corev1.TolerationOpEqual, Value: Taint.Value, Effect: Taint.Effect}},
			Containers: []corev1.Container{{
				Name: "main", Image: image, Command: command,
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
			}},
		},
	}
}

// waitPod polls the pod until ok says so, failing after timeout.
func waitPod(t testing.TB, c kubernetes.Interface, name string, timeout time.Duration, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := c.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if ok(p) {
				return p
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("pod %s: gave up after %s in phase %s: %s %s", name, timeout, last.Status.Phase, last.Status.Reason, last.Status.Message)
	}
	t.Fatalf("pod %s: not found after %s", name, timeout)
	return nil
}

// TestPodLifecycle: a pod bound to the node boots a real guest, reaches
// Running with the VM's address, its main process's output is its log;
// deleting it stops and removes the VM. A pod whose main process exits
// ends Succeeded or Failed with its exit code.
func TestPodLifecycle(t *testing.T) {
	cp := kubetest.Start(t)
	store, source := testStore(t)
	runNode(t, testConfig(t, cp, store, source))
	ctx := context.Background()
	pods := cp.Client.CoreV1().Pods("default")

	if _, err := pods.Create(ctx, testPod("web", "test/busybox", "/bin/sh", "-c", "echo hello from the pod; exec sleep 1000"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p := waitPod(t, cp.Client, "web", 4*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodFailed
	})
	if p.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod web: %s %s", p.Status.Reason, p.Status.Message)
	}
	t.Logf("pod web Running after %s at %s", time.Since(start).Round(time.Millisecond), p.Status.PodIP)
	if p.Status.PodIP == "" {
		t.Error("running pod has no pod IP")
	}
	// Logs and exec go through the apiserver to the node's kubelet API.
	waitLogs(t, cp, "web", func(logs string) bool { return strings.Contains(logs, "hello from the pod") })
	if out, err := execIn(ctx, cp, "web", "cat", "/proc/cmdline"); err != nil || !strings.Contains(out, "console=") {
		t.Errorf("exec in pod web: %q, %v", out, err)
	}
	name := vmName(p)
	if v, err := store.Get(name); err != nil || v.State.Status != vm.StatusRunning {
		t.Fatalf("VM %s: %v", name, err)
	}

	// The pod leaves the API once its VM is gone, not when the grace
	// period ends.
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(60))}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod web still there 30 s after its delete with a grace period of 60 s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if _, err := store.Get(name); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("VM %s after the pod's delete: %v, want not found", name, err)
	}

	// A main process that exits: the pod ends with its exit code.
	if _, err := pods.Create(ctx, testPod("job", "test/busybox", "/bin/sh", "-c", "echo working; exit 3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p = waitPod(t, cp.Client, "job", 4*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	if p.Status.Phase != corev1.PodFailed || len(p.Status.ContainerStatuses) != 1 ||
		p.Status.ContainerStatuses[0].State.Terminated == nil || p.Status.ContainerStatuses[0].State.Terminated.ExitCode != 3 {
		t.Errorf("pod job: phase %s, statuses %+v; want Failed with exit code 3", p.Status.Phase, p.Status.ContainerStatuses)
	}

	// An image that cannot be had: Failed, with an event naming why.
	if _, err := pods.Create(ctx, testPod("bad", "test/missing", "/bin/true"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p = waitPod(t, cp.Client, "bad", time.Minute, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if !strings.Contains(p.Status.Message, "no such image") {
		t.Errorf("pod bad: message %q, want the image error", p.Status.Message)
	}
	if ev := waitEvent(t, cp, "bad", "ImageBuildFailed"); ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "test/missing: no such image") {
		t.Errorf("event for pod bad: %s %q", ev.Type, ev.Message)
	}

	// A guest that does not boot: Failed, with an event saying why.
	if _, err := pods.Create(ctx, testPod("panics", "test/panics", "/bin/true"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p = waitPod(t, cp.Client, "panics", 4*time.Minute, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	ev := waitEvent(t, cp, "panics", "VMStartFailed")
	t.Logf("pod panics: %s: %s", p.Status.Reason, ev.Message)
	if !strings.Contains(ev.Message, "panic") {
		t.Errorf("event for pod panics: %q, want the kernel panic named", ev.Message)
	}
}

// waitEvent waits for an event of reason about pod.
func waitEvent(t *testing.T, cp *kubetest.ControlPlane, pod, reason string) corev1.Event {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		evs, err := cp.Client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=" + reason})
		if err == nil && len(evs.Items) > 0 {
			return evs.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for pod %s: %v", reason, pod, err)
		}
	}
}

// TestPodAdoption: a node that stops and starts again adopts the VM of a
// running pod: the same VM, still running, its main process not started
// a second time. The VM of a pod deleted meanwhile is removed.
func TestPodAdoption(t *testing.T) {
	cp := kubetest.Start(t)
	store, source := testStore(t)
	stop := startNode(t, testConfig(t, cp, store, source))
	ctx := context.Background()
	pods := cp.Client.CoreV1().Pods("default")
	for _, name := range []string{"kept", "gone"} {
		if _, err := pods.Create(ctx, testPod(name, "test/busybox", "/bin/sh", "-c", "echo started once; exec sleep 1000"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gone := waitPod(t, cp.Client, "gone", 4*time.Minute, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	p := waitPod(t, cp.Client, "kept", 4*time.Minute, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	v1, err := store.Get(vmName(p))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if err := pods.Delete(ctx, "gone", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}

	// The throwaway VM of a warm the node died in.
	warming := imageName("test/warm") + "-warming-0a1b2c"
	wo, err := source(ctx, "test/busybox")
	if err != nil {
		t.Fatal(err)
	}
	wo.Name = warming
	if _, err := store.Create(ctx, wo.CreateOptions); err != nil {
		t.Fatal(err)
	}

	// The new node reports the pod it adopts Ready anew; the API keeps
	// seconds, so start it a second after the old node's report at least.
	was := readySince(p)
	time.Sleep(time.Until(was.Add(time.Second)))
	runNode(t, testConfig(t, cp, store, source))
	if _, err := store.Get(vmName(gone)); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("VM of the pod deleted while the node was down: %v, want it removed", err)
	}
	if _, err := store.Get(warming); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("VM %s of a warm that never ended: %v, want it removed", warming, err)
	}
	// Wait until the new node has taken the pod over (the API still says
	// Running from the old node until then).
	p = waitPod(t, cp.Client, "kept", 2*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && readySince(p).After(was)
	})
	v2, err := store.Get(vmName(p))
	if err != nil || v2.State.Status != vm.StatusRunning || v2.State.PID != v1.State.PID {
		t.Fatalf("VM after the restart: %v (pid %d, before %d)", err, v2.State.PID, v1.State.PID)
	}
	if ls, _ := store.List(); len(ls) != 1 {
		t.Errorf("%d VMs after the restart, want 1", len(ls))
	}
	out, err := execIn(ctx, cp, "kept", "cat", "/run/banger-pod/main.log")
	if err != nil || strings.Count(out, "started once") != 1 {
		t.Errorf("main log after the restart: %q, %v; want the main process started once", out, err)
	}
}

func ptr[T any](v T) *T { return &v }

// readySince is when the pod's Ready condition last changed (zero if it
// has none).
func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// freeAddr is a free 127.0.0.1:PORT.
func freeAddr(t testing.TB) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// execIn runs command in the pod as kubectl exec does (SPDY through the
// apiserver) and returns its output.
// waitLogs reads pod's log (kubectl logs) until done says it is what the
// test waits for, for up to 30 s, and returns it.
func waitLogs(t *testing.T, cp *kubetest.ControlPlane, pod string, done func(logs string) bool) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		logs, err := cp.Client.CoreV1().Pods("default").GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(context.Background())
		if err == nil && done(string(logs)) {
			return string(logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of pod %s: %q, %v", pod, logs, err)
		}
	}
}

func execIn(ctx context.Context, cp *kubetest.ControlPlane, pod string, command ...string) (string, error) {
	req := cp.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(cp.Config, "POST", req.URL())
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errb})
	return out.String() + errb.String(), err
}
