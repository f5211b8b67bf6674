package node

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/thaloco/banger/internal/kubetest"
	"github.com/thaloco/banger/internal/vm"
)

// BenchNodeEnv turns BenchmarkNodePods on (scripts/bench-node.sh sets
// it): it boots tens of VMs, too many for "go test -bench ." of the whole
// tree. Its value is "SEQUENTIAL,BURST", the pod counts.
const BenchNodeEnv = "BANGER_BENCH_NODE"

// benchMemory is each benchmark VM's memory.
const benchMemory = "128Mi"

// BenchmarkNodePods measures what banger node adds on top of creating and
// starting VMs directly, against a real control plane and the test
// kernel and rootfs as a banger image, warmed (user networking, the
// image's warm snapshot restored by both):
//
//   - pods: created one after another, each until the API shows it
//     Running (median; the API is listed every 100 ms), then a burst
//     created at once, until each is Running (median and max, from the
//     burst's start);
//   - direct: vm.Store.Create and Start of the same image with the same
//     options (what "banger vm create" and "vm start" do), likewise;
//   - the VMM memory of each VM of the bursts: RSS and PSS of its QEMU
//     from /proc/PID/smaps_rollup (mean).
func BenchmarkNodePods(b *testing.B) {
	spec := os.Getenv(BenchNodeEnv)
	if spec == "" {
		b.Skipf("set %s=SEQUENTIAL,BURST (scripts/bench-node.sh does) to run it", BenchNodeEnv)
	}
	var seq, burst int
	if _, err := fmt.Sscanf(spec, "%d,%d", &seq, &burst); err != nil || seq < 1 || burst < 1 {
		b.Fatalf("%s=%q: want SEQUENTIAL,BURST, two positive counts", BenchNodeEnv, spec)
	}
	cp := kubetest.Start(b)
	store, source := testStore(b)
	ctx := context.Background()
	mem := resource.MustParse(benchMemory)
	memMiB := int(mem.Value() >> 20)
	t0 := time.Now()
	if _, err := store.WarmImage(ctx, testImage, vm.WarmOptions{CPUs: 1, MemoryMiB: memMiB, Net: vm.NetUser}); err != nil {
		b.Fatal(err)
	}
	b.Logf("warmed image %s (1 CPU, %dM, user networking) in %s", testImage, memMiB, time.Since(t0).Round(time.Millisecond))
	cfg := testConfig(b, cp, store, source)
	cfg.Warm = true
	runNode(b, cfg)
	b.ResetTimer()

	pod := func(name string) *corev1.Pod {
		p := testPod(name, "test/image", "/bin/sh", "-c", "exec sleep 100000")
		p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = mem
		return p
	}
	opts := func(name string) vm.CreateOptions {
		return vm.CreateOptions{Name: name, Image: testImage, CPUs: 1, MemoryMiB: memMiB, Net: vm.NetUser, Ready: vm.ReadySSH}
	}

	// Pods one after another.
	podSeq := make([]time.Duration, 0, seq)
	for i := range seq {
		name := fmt.Sprintf("seq-%d", i)
		d := runPods(b, cp, []*corev1.Pod{pod(name)})[name]
		podSeq = append(podSeq, d)
		checkRestored(b, store, vmNameOf(b, cp, name))
	}
	deletePods(b, cp, store)

	// Direct creates and starts, one after another.
	vmSeq := make([]time.Duration, 0, seq)
	for i := range seq {
		name := fmt.Sprintf("direct-seq-%d", i)
		start := time.Now()
		if _, err := store.Create(ctx, opts(name)); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Start(ctx, name, vm.StartOptions{}); err != nil {
			b.Fatal(err)
		}
		vmSeq = append(vmSeq, time.Since(start))
		checkRestored(b, store, name)
	}
	removeVMs(b, store)

	// A burst of pods.
	pods := make([]*corev1.Pod, burst)
	for i := range pods {
		pods[i] = pod(fmt.Sprintf("burst-%d", i))
	}
	podBurst := slices.Collect(maps.Values(runPods(b, cp, pods)))
	var podPIDs []int
	for _, p := range pods {
		v := checkRestored(b, store, vmNameOf(b, cp, p.Name))
		podPIDs = append(podPIDs, v.State.PID)
	}
	podRSS, podPSS := meanMemory(b, podPIDs)
	deletePods(b, cp, store)

	// A burst of direct creates and starts.
	vmBurst := make([]time.Duration, burst)
	var wg sync.WaitGroup
	errs := make([]error, burst)
	start := time.Now()
	for i := range burst {
		wg.Go(func() {
			name := fmt.Sprintf("direct-burst-%d", i)
			if _, errs[i] = store.Create(ctx, opts(name)); errs[i] == nil {
				_, errs[i] = store.Start(ctx, name, vm.StartOptions{})
			}
			vmBurst[i] = time.Since(start)
		})
	}
	wg.Wait()
	var vmPIDs []int
	for i, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
		v := checkRestored(b, store, fmt.Sprintf("direct-burst-%d", i))
		vmPIDs = append(vmPIDs, v.State.PID)
	}
	vmRSS, vmPSS := meanMemory(b, vmPIDs)
	removeVMs(b, store)
	b.StopTimer()

	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }
	b.Logf("%-34s %12s %12s", "", "banger node", "direct")
	b.Logf("%-34s %12s %12s", fmt.Sprintf("sequential, median of %d", seq), ms(median(podSeq)), ms(median(vmSeq)))
	b.Logf("%-34s %12s %12s", fmt.Sprintf("burst of %d, median", burst), ms(median(podBurst)), ms(median(vmBurst)))
	b.Logf("%-34s %12s %12s", fmt.Sprintf("burst of %d, max (all Running)", burst), ms(slices.Max(podBurst)), ms(slices.Max(vmBurst)))
	b.Logf("%-34s %9d MiB %9d MiB", "VMM RSS per VM (burst, mean)", podRSS>>10, vmRSS>>10)
	b.Logf("%-34s %9d MiB %9d MiB", "VMM PSS per VM (burst, mean)", podPSS>>10, vmPSS>>10)
	b.ReportMetric(float64(median(podSeq).Milliseconds()), "pod-seq-median-ms")
	b.ReportMetric(float64(median(vmSeq).Milliseconds()), "vm-seq-median-ms")
	b.ReportMetric(float64(median(podBurst).Milliseconds()), "pod-burst-median-ms")
	b.ReportMetric(float64(slices.Max(podBurst).Milliseconds()), "pod-burst-max-ms")
	b.ReportMetric(float64(median(vmBurst).Milliseconds()), "vm-burst-median-ms")
	b.ReportMetric(float64(slices.Max(vmBurst).Milliseconds()), "vm-burst-max-ms")
	b.ReportMetric(float64(podPSS), "pod-pss-KiB")
	b.ReportMetric(float64(vmPSS), "vm-pss-KiB")
}

// runPods creates pods at once and returns, for each, how long after the
// first create the API showed it Running (listed every 100 ms).
func runPods(b *testing.B, cp *kubetest.ControlPlane, pods []*corev1.Pod) map[string]time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// Its own client without a rate limit: client-go's default 5 requests
	// a second would put up to 200 ms between the 100 ms looks.
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = -1, 0
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	api := client.CoreV1().Pods("default")
	start := time.Now()
	errs := make(chan error, len(pods))
	for _, p := range pods {
		go func() {
			_, err := api.Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				err = fmt.Errorf("creating pod %s: %w", p.Name, err)
			}
			errs <- err
		}()
	}
	for range pods {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	want := map[string]bool{}
	for _, p := range pods {
		want[p.Name] = true
	}
	got := map[string]time.Duration{}
	for len(got) < len(pods) {
		list, err := api.List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatalf("listing pods: %v (%d of %d Running)", err, len(got), len(pods))
		}
		now := time.Since(start)
		for _, p := range list.Items {
			if _, seen := got[p.Name]; seen || !want[p.Name] {
				continue
			}
			switch p.Status.Phase {
			case corev1.PodRunning:
				got[p.Name] = now
			case corev1.PodFailed:
				b.Fatalf("pod %s failed: %s %s", p.Name, p.Status.Reason, p.Status.Message)
			}
		}
		select {
		case <-ctx.Done():
			b.Fatalf("pods not all Running: %d of %d, %v", len(got), len(pods), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return got
}

// vmNameOf is the VM of the pod called name.
func vmNameOf(b *testing.B, cp *kubetest.ControlPlane, name string) string {
	b.Helper()
	p, err := cp.Client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return vmName(p)
}

// checkRestored fails unless VM name runs, restored from the warm
// snapshot: the comparison is between restores.
func checkRestored(b *testing.B, store *vm.Store, name string) *vm.VM {
	b.Helper()
	v, err := store.Get(name)
	if err != nil {
		b.Fatal(err)
	}
	if v.State.Status != vm.StatusRunning || v.State.Path != vm.PathRestore {
		b.Fatalf("VM %s: %s, path %s; want running, restored from the warm snapshot", name, v.State.Status, v.State.Path)
	}
	return v
}

// deletePods deletes every pod at once and waits until they and their
// VMs are gone.
func deletePods(b *testing.B, cp *kubetest.ControlPlane, store *vm.Store) {
	b.Helper()
	ctx := context.Background()
	api := cp.Client.CoreV1().Pods("default")
	if err := api.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}, metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		list, err := api.List(ctx, metav1.ListOptions{})
		ls, lerr := store.List()
		if err == nil && lerr == nil && len(list.Items) == 0 && len(ls) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("pods or VMs left after deleting them all: %v %v", err, lerr)
		}
	}
}

// removeVMs removes every VM of store, running or not.
func removeVMs(b *testing.B, store *vm.Store) {
	b.Helper()
	ls, err := store.List()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range ls {
		if err := store.Remove(context.Background(), l.Name, true); err != nil {
			b.Fatal(err)
		}
	}
}

// meanMemory is the mean Rss and Pss (KiB) of the processes' smaps_rollup.
func meanMemory(b *testing.B, pids []int) (rss, pss int64) {
	b.Helper()
	for _, pid := range pids {
		r, p, err := smapsRollup(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss, pss = rss+r, pss+p
	}
	return rss / int64(len(pids)), pss / int64(len(pids))
}

// smapsRollup reads Rss and Pss (KiB) from /proc/PID/smaps_rollup.
func smapsRollup(pid int) (rss, pss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		}
	}
	return rss, pss, s.Err()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
