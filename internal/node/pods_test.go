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
	"github.com/thaloco/banger/internal/kubetest"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/vm"
)

// testStore is a VM store with the test kernel as "test" and a busybox
// root filesystem running dropbear that trusts the store's key.
func testStore(t *testing.T) (*vm.Store, string) {
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
	return s, rootfs
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
func waitPod(t *testing.T, c kubernetes.Interface, name string, timeout time.Duration, ok func(*corev1.Pod) bool) *corev1.Pod {
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
	store, rootfs := testStore(t)
	source := func(_ context.Context, ref string) (vm.CreateOptions, error) {
		if ref != "test/busybox" {
			return vm.CreateOptions{}, errors.New("no such image")
		}
		return vm.CreateOptions{Kernel: "test", Rootfs: rootfs}, nil
	}
	host := Resources{CPUMilli: 4000, MemoryBytes: 16 << 30}
	runNode(t, Config{
		Name: "banger-test", Client: cp.Client, Version: "banger-test", VMs: store, Source: source, Net: vm.NetUser,
		NodeIP: "127.0.0.1", ListenAddr: freeAddr(t), ClientCAFile: cp.CAFile,
		host: &host, checks: func() Checks { return Checks{} },
	})
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
	var logs []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var err error
		logs, err = pods.GetLogs("web", &corev1.PodLogOptions{}).DoRaw(ctx)
		if err == nil && strings.Contains(string(logs), "hello from the pod") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of pod web: %q, %v", logs, err)
		}
	}
	if out, err := execIn(ctx, cp, "web", "cat", "/proc/cmdline"); err != nil || !strings.Contains(out, "console=") {
		t.Errorf("exec in pod web: %q, %v", out, err)
	}
	name := vmName(p)
	if v, err := store.Get(name); err != nil || v.State.Status != vm.StatusRunning {
		t.Fatalf("VM %s: %v", name, err)
	}

	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(10))}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod web still there a minute after its delete: %v", err)
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
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		evs, err := cp.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=bad,reason=ImageBuildFailed"})
		if err == nil && len(evs.Items) > 0 {
			if ev := evs.Items[0]; ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "test/missing: no such image") {
				t.Errorf("event for pod bad: %s %q", ev.Type, ev.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ImageBuildFailed event for pod bad: %v", err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// freeAddr is a free 127.0.0.1:PORT.
func freeAddr(t *testing.T) string {
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
