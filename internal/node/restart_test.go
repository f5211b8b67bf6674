package node

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/thaloco/banger/internal/kubetest"
)

// TestPodRestart: under Always a main process that exits runs again in
// the same VM after a back-off, the pod staying Running (its container
// Waiting in CrashLoopBackOff meanwhile) with the restarts counted, the
// last exit recorded, the log the current run's and the previous run's
// log kept for --previous, also after the VM stopped; a node started
// again keeps counting. Under OnFailure a failed run is restarted and a
// successful one ends the pod Succeeded.
func TestPodRestart(t *testing.T) {
	cp := kubetest.Start(t)
	store, source := testStore(t)
	stop := startNode(t, testConfig(t, cp, store, source))
	ctx := context.Background()
	pods := cp.Client.CoreV1().Pods("default")
	crashy := testPod("crashy", "test/busybox", "/bin/sh", "-c", "echo run; sleep 1; exit 2")
	crashy.Spec.RestartPolicy = corev1.RestartPolicyAlways
	once := testPod("once", "test/busybox", "/bin/sh", "-c", "if [ -e /run/banger-pod/ran ]; then echo second; exit 0; fi; touch /run/banger-pod/ran; echo first; exit 1")
	once.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	for _, p := range []*corev1.Pod{crashy, once} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var sawBackoff bool
	p := waitPod(t, cp.Client, "crashy", 5*time.Minute, func(p *corev1.Pod) bool {
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return true
		}
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" && p.Status.Phase == corev1.PodRunning {
			if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 2 {
				t.Errorf("in back-off, last termination %+v, want exit code 2", cs.LastTerminationState)
			}
			sawBackoff = true
		}
		// The back-off must have been seen: the node's status reaches the
		// API through virtual-kubelet's queue, which under load may skip
		// a short Waiting spell, so later (longer) ones are waited for too.
		return sawBackoff && cs.RestartCount >= 2 && cs.State.Running != nil
	})
	cs := p.Status.ContainerStatuses[0]
	if p.Status.Phase != corev1.PodRunning || cs.RestartCount < 2 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 2 {
		t.Fatalf("pod crashy: phase %s, status %+v; want Running after 2 restarts, the last exit 2", p.Status.Phase, cs)
	}
	if !sawBackoff {
		t.Error("pod crashy was never seen Waiting in CrashLoopBackOff")
	}
	// As with a kubelet, the log is the current run's; --previous shows
	// the run before.
	prev, err := pods.GetLogs("crashy", &corev1.PodLogOptions{Previous: true}).DoRaw(ctx)
	if err != nil || string(prev) != "run\n" {
		t.Errorf("previous logs of pod crashy: %q, %v; want the last run's line", prev, err)
	}
	// The current run's log, once it has written its line.
	if logs := waitLogs(t, cp, "crashy", func(logs string) bool { return logs != "" }); logs != "run\n" {
		t.Errorf("logs of pod crashy: %q; want the current run's line alone", logs)
	}

	// kubectl attach streams the output of the runs to come.
	attachRuns(t, cp, "crashy", 2)

	// kubectl logs -f goes on with the next run's log after a restart.
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Minute)
	stream, err := pods.GetLogs("crashy", &corev1.PodLogOptions{Follow: true}).Stream(fctx)
	if err != nil {
		t.Fatal(err)
	}
	followed := bufio.NewScanner(stream)
	for runs := 0; runs < 2; {
		if !followed.Scan() {
			t.Fatalf("following the log of pod crashy: %d runs seen, then %v; want 2", runs, followed.Err())
		}
		if followed.Text() == "run" {
			runs++
		}
	}
	fcancel()
	stream.Close()

	p = waitPod(t, cp.Client, "once", 5*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	if cs := p.Status.ContainerStatuses; p.Status.Phase != corev1.PodSucceeded || len(cs) != 1 || cs[0].RestartCount != 1 ||
		cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 0 ||
		cs[0].LastTerminationState.Terminated == nil || cs[0].LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("pod once: phase %s, statuses %+v; want Succeeded after one restart of a run that exited 1", p.Status.Phase, cs)
	}
	// Its VM is stopped: both logs are read from the copies the node took.
	if logs, err := pods.GetLogs("once", &corev1.PodLogOptions{}).DoRaw(ctx); err != nil || string(logs) != "second\n" {
		t.Errorf("logs of pod once: %q, %v; want the last run's", logs, err)
	}
	if logs, err := pods.GetLogs("once", &corev1.PodLogOptions{Previous: true}).DoRaw(ctx); err != nil || string(logs) != "first\n" {
		t.Errorf("previous logs of pod once: %q, %v; want the first run's", logs, err)
	}

	// A node started again adopts crashy and goes on counting.
	p, err = pods.Get(ctx, "crashy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Status.ContainerStatuses[0].RestartCount
	stop()
	runNode(t, testConfig(t, cp, store, source))
	p = waitPod(t, cp.Client, "crashy", 2*time.Minute, func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount < before {
			t.Fatalf("after the node's restart the count went from %d to %d", before, p.Status.ContainerStatuses[0].RestartCount)
		}
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount > before
	})
	t.Logf("pod crashy: %d restarts before the node's restart, %d after", before, p.Status.ContainerStatuses[0].RestartCount)
}

// attachRuns attaches to pod (kubectl attach, no stdin) and waits for n
// lines "run", each from a restart after the attach began. (An attach
// with stdin is refused: TestAttachStdinRefused. Through the apiserver,
// the client does not always get that refusal before the stream ends.)
func attachRuns(t *testing.T, cp *kubetest.ControlPlane, pod string, n int) {
	t.Helper()
	attach := func(ctx context.Context, stdout io.Writer) error {
		req := cp.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource("attach").
			VersionedParams(&corev1.PodAttachOptions{Container: "main", Stdout: true}, scheme.ParameterCodec)
		ex, err := remotecommand.NewSPDYExecutor(cp.Config, "POST", req.URL())
		if err != nil {
			return err
		}
		return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := attach(ctx, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	var seen []string
	for runs := 0; runs < n && lines.Scan(); {
		seen = append(seen, lines.Text())
		if lines.Text() == "run" {
			runs++
		}
	}
	if got := strings.Count(strings.Join(seen, "\n")+"\n", "run\n"); got < n {
		t.Fatalf("attached to pod %s: %q, %v; want %d runs' lines", pod, seen, lines.Err(), n)
	}
	cancel()
	<-done
}

// stdinAttach is a kubectl attach -i as the kubelet API hands it over.
type stdinAttach struct{ api.AttachIO }

func (stdinAttach) Stdin() io.Reader { return strings.NewReader("typed") }

// TestAttachStdinRefused: the main process reads no input, so an attach
// with stdin is refused at once, saying so, before any VM is looked up.
func TestAttachStdinRefused(t *testing.T) {
	err := (&pods{}).AttachToContainer(context.Background(), "default", "web", "main", stdinAttach{})
	if !errdefs.IsInvalidInput(err) || !strings.Contains(err.Error(), "container main reads no input") {
		t.Errorf("attach -i: %v; want an invalid-input error saying the container reads no input", err)
	}
}
