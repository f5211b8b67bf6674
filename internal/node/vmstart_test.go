package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/thaloco/banger/internal/kubetest"
	"github.com/thaloco/banger/internal/netnstest"
	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/vm"
)

// webPod is a pod whose main process serves "hello from <name>" over
// HTTP on port 8080 (busybox httpd), declared as its container port.
func webPod(name, image string) *corev1.Pod {
	p := testPod(name, image, "/bin/sh", "-c",
		"mkdir -p /www && echo hello from "+name+" >/www/index.html && exec httpd -f -p 8080 -h /www")
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
	return p
}

// createRunning creates pod and waits until it is Running, returning it
// and how long that took (create to Running seen through the API).
func createRunning(t *testing.T, cp *kubetest.ControlPlane, pod *corev1.Pod) (*corev1.Pod, time.Duration) {
	t.Helper()
	p, took, err := tryRunning(cp, pod)
	if err != nil {
		t.Fatal(err)
	}
	return p, took
}

// tryRunning is createRunning for any goroutine: a failure is its error.
func tryRunning(cp *kubetest.ControlPlane, pod *corev1.Pod) (*corev1.Pod, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	api := cp.Client.CoreV1().Pods("default")
	if _, err := api.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, 0, err
	}
	for {
		p, err := api.Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			return nil, 0, fmt.Errorf("pod %s: %w", pod.Name, err)
		case p.Status.Phase == corev1.PodRunning:
			return p, time.Since(start), nil
		case p.Status.Phase == corev1.PodFailed:
			return nil, 0, fmt.Errorf("pod %s failed: %s %s", pod.Name, p.Status.Reason, p.Status.Message)
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("pod %s: not Running after 4m (phase %s)", pod.Name, p.Status.Phase)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestPodTapNetwork runs a node with --net tap and warm starts inside a
// network namespace of the test's own (the control plane too, on its
// 127.0.0.1): two pods whose main process serves HTTP on its container
// port each get their VM's own tap address as pod IP, restored from the
// image's warm snapshot (the second at another address than the
// throwaway VM it was taken of, so its restore moves the guest), and the
// host reaches each pod's port at its address.
func TestPodTapNetwork(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	cp := kubetest.Start(t)
	store, source := testStore(t)
	cfg := testConfig(t, cp, store, source)
	cfg.Net, cfg.Warm = vm.NetTap, true
	runNode(t, cfg)

	seen := map[string]string{}
	for _, name := range []string{"web1", "web2"} {
		p, took := createRunning(t, cp, webPod(name, "test/image"))
		v, err := store.Get(vmName(p))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pod %s Running after %s at %s (VM path %s, identity %s)", name, took.Round(time.Millisecond), p.Status.PodIP, v.State.Path, v.State.Identity)
		if p.Status.PodIP == "" || p.Status.PodIP != v.State.GuestAddr || len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP {
			t.Fatalf("pod %s: pod IP %q (IPs %v), want the VM's tap address %q", name, p.Status.PodIP, p.Status.PodIPs, v.State.GuestAddr)
		}
		if other, dup := seen[p.Status.PodIP]; dup {
			t.Fatalf("pods %s and %s both have pod IP %s", other, name, p.Status.PodIP)
		}
		seen[p.Status.PodIP] = name
		if v.Config.Snapshot != vm.WarmSnapshotName(testImage) || v.State.Path != vm.PathRestore {
			t.Errorf("VM of pod %s: snapshot %q, path %q; want restored from %s", name, v.Config.Snapshot, v.State.Path, vm.WarmSnapshotName(testImage))
		}
	}
	if !strings.Contains(mustVM(t, store, "web2").State.Identity, "net=set") {
		t.Errorf("the second pod's restore did not move its guest to its own address")
	}
	for ip, name := range seen {
		url := "http://" + net.JoinHostPort(ip, "8080") + "/"
		var body string
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
			body, err = httpGet(url)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s (pod %s) from the host: %v", url, name, err)
			}
		}
		if body != "hello from "+name+"\n" {
			t.Errorf("GET %s: %q, want pod %s's page", url, body, name)
		}
	}
}

// mustVM is the VM of the pod called name in the default namespace.
func mustVM(t *testing.T, store *vm.Store, name string) *vm.VM {
	t.Helper()
	ls, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.VM != nil && strings.HasPrefix(l.Name, "k8s-default-"+name+"-") {
			return l.VM
		}
	}
	t.Fatalf("no VM of pod %s", name)
	return nil
}

func httpGet(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	return string(b), err
}

// TestPodWarmStart: with warm starts off, a pod of an image boots cold
// and no warm snapshot is made. The node restarted with them on, the next
// two pods of the image, created at once, wait while the node warms it
// once with their resources (one ImageWarmed event) and restore the
// snapshot, and so does a later one, without warming again, its VM ready
// sooner than the cold pod's. On user networking a pod that declares ports is told
// they are unreachable.
func TestPodWarmStart(t *testing.T) {
	cp := kubetest.Start(t)
	store, source := testStore(t)
	cfg := testConfig(t, cp, store, source)
	stop := startNode(t, cfg)
	snaps := snapshot.New(store.Layout)

	p, cold := createRunning(t, cp, webPod("cold", "test/image"))
	v, err := store.Get(vmName(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod cold (--warm=false) Running after %s (boot: VMM %s, ready %s)", cold.Round(time.Millisecond), v.State.Boot.VMM, v.State.Boot.Ready)
	coldReady := v.State.Boot.Ready
	if v.Config.Snapshot != "" || v.State.Path != vm.PathBoot {
		t.Errorf("VM of pod cold: snapshot %q, path %q; want booted", v.Config.Snapshot, v.State.Path)
	}
	if _, err := snaps.Get(vm.WarmSnapshotName(testImage)); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("warm snapshot with warm starts off: %v, want none", err)
	}
	if ev := waitEvent(t, cp, "cold", ReasonPortsUnreachable); ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "8080/TCP") || !strings.Contains(ev.Message, "--net tap") {
		t.Errorf("event for pod cold: %s %q", ev.Type, ev.Message)
	}
	stop()

	cfg.Warm = true
	runNode(t, cfg)
	// Two pods at once: one warm, shared.
	var wg sync.WaitGroup
	firsts := make([]*corev1.Pod, 2)
	tooks := make([]time.Duration, 2)
	errs := make([]error, 2)
	for i := range firsts {
		wg.Go(func() {
			firsts[i], tooks[i], errs[i] = tryRunning(cp, webPod(fmt.Sprintf("warm%d", i+1), "test/image"))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	man, err := snaps.Get(vm.WarmSnapshotName(testImage))
	if err != nil {
		t.Fatalf("no warm snapshot after the first pods with warm starts: %v", err)
	}
	t.Logf("pods warm1 and warm2 (created at once; the image warmed for them, then restored) Running after %s and %s; the snapshot: %d CPU, %dM, %s, ready %s",
		tooks[0].Round(time.Millisecond), tooks[1].Round(time.Millisecond), man.CPUs, man.MemoryMiB, man.Net, man.Ready)
	if cpus, mem := podResources(firsts[0]); man.CPUs != cpus || man.MemoryMiB != mem || man.Net != vm.NetUser || man.Ready != vm.ReadySSH {
		t.Errorf("warm snapshot has %d CPU, %dM, %s, ready %s; want the pod's %d CPU, %dM, user, ssh", man.CPUs, man.MemoryMiB, man.Net, man.Ready, cpus, mem)
	}
	evs, err := cp.Client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + ReasonImageWarmed})
	if err != nil || len(evs.Items) != 1 || evs.Items[0].Count > 1 {
		t.Errorf("%s events: %d, %v; want one for the two pods", ReasonImageWarmed, len(evs.Items), err)
	} else {
		t.Logf("event for pod %s: %s", evs.Items[0].InvolvedObject.Name, evs.Items[0].Message)
	}
	p3, third := createRunning(t, cp, webPod("warm3", "test/image"))
	var thirdReady time.Duration
	for _, pod := range append(firsts, p3) {
		v, err := store.Get(vmName(pod))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("VM of pod %s: path %s, VMM up %s, ready %s, identity %s", pod.Name, v.State.Path, v.State.Boot.VMM, v.State.Boot.Ready, v.State.Identity)
		thirdReady = v.State.Boot.Ready
		if v.Config.Snapshot != vm.WarmSnapshotName(testImage) || v.State.Path != vm.PathRestore {
			t.Errorf("VM of pod %s: snapshot %q, path %q; want restored from %s", pod.Name, v.Config.Snapshot, v.State.Path, vm.WarmSnapshotName(testImage))
		}
	}
	if again, err := snaps.Get(vm.WarmSnapshotName(testImage)); err != nil || !again.CreatedAt.Equal(man.CreatedAt) {
		t.Errorf("warm snapshot after the third pod: %v (made %v, first %v); want the first one kept", err, again.CreatedAt, man.CreatedAt)
	}
	// The VMs' own times, spawn to ready, are compared: the pods' also
	// hold API round trips, which a loaded machine stretches at random.
	t.Logf("create to Running: cold %s, warm (a later pod) %s; VM spawn to ready: cold %s, restored %s",
		cold.Round(time.Millisecond), third.Round(time.Millisecond), coldReady.Round(time.Millisecond), thirdReady.Round(time.Millisecond))
	if thirdReady == 0 || thirdReady >= coldReady {
		t.Errorf("the restored VM took %s to be ready, the cold one %s", thirdReady, coldReady)
	}
}

// TestPodHostChecks: a pod asking for more memory than the host has
// available, a pod whose image boots a kernel that is not installed, and
// pods with a sidecar, an init container, a volume of a missing configMap
// or of a key a configMap lacks fail before any VM is made, with events naming the numbers,
// the containers, the configMap and the fix.
func TestPodHostChecks(t *testing.T) {
	cp := kubetest.Start(t)
	store, source := testStore(t)
	cfg := testConfig(t, cp, store, source)
	// A fault injected: a real host cannot be made short of memory on
	// demand.
	cfg.memAvailable = func() (int64, error) { return 200 << 20, nil }
	runNode(t, cfg)
	pods := cp.Client.CoreV1().Pods("default")
	ctx := context.Background()

	big := testPod("big", "test/image", "/bin/true") // 256Mi
	small := testPod("nokernel", "test/nokernel", "/bin/true")
	small.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("128Mi")
	sidecar := testPod("sidecar", "test/image", "/bin/true")
	sidecar.Spec.Containers = append(sidecar.Spec.Containers, corev1.Container{Name: "proxy", Image: "test/image"})
	initc := testPod("initc", "test/image", "/bin/true")
	initc.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "test/image"}}
	// A configMap volume of a configMap that is not there.
	nocm := testPod("nocm", "test/image", "/bin/true")
	nocm.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}}}
	nocm.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	// One of a configMap that is there, asking for a key it lacks.
	if _, err := cp.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "partial"}, Data: map[string]string{"a": "1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nokey := testPod("nokey", "test/image", "/bin/true")
	nokey.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "partial"}, Items: []corev1.KeyToPath{{Key: "b", Path: "b"}}}}}}
	nokey.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	for _, pod := range []*corev1.Pod{big, small, sidecar, initc, nocm, nokey} {
		if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		pod, reason string
		want        []string
	}{
		{"big", ReasonOutOfMemory, []string{"256 MiB", "200 MiB available"}},
		{"nokernel", ReasonKernelMissing, []string{"image test-nokernel boots kernel gone-6.12", `banger kernel pull gone-6.12`}},
		{"sidecar", ReasonUnsupportedSpec, []string{"pod has 2 containers (main, proxy)", "hint: run the others as their own pods"}},
		{"initc", ReasonUnsupportedSpec, []string{"pod has init containers (setup)", "runs no init containers"}},
		{"nocm", ReasonFailedMount, []string{`volume cfg: configMap default/absent`, "not found"}},
		{"nokey", ReasonFailedMount, []string{`volume cfg: no key "b"`}},
	} {
		p := waitPod(t, cp.Client, tc.pod, time.Minute, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		ev := waitEvent(t, cp, tc.pod, tc.reason)
		t.Logf("pod %s: %s: %s", tc.pod, p.Status.Reason, ev.Message)
		if p.Status.Reason != tc.reason || ev.Type != corev1.EventTypeWarning {
			t.Errorf("pod %s: reason %q, event %s; want %s, a warning", tc.pod, p.Status.Reason, ev.Type, tc.reason)
		}
		for _, w := range tc.want {
			if !strings.Contains(ev.Message, w) {
				t.Errorf("event for pod %s: %q, want %q in it", tc.pod, ev.Message, w)
			}
		}
	}
	if ls, err := store.List(); err != nil || len(ls) != 0 {
		t.Errorf("VMs after the refused pods: %d, %v; want none", len(ls), err)
	}
}
