package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/kubetest"
)

// TestNodeScripts runs the banger node scripts: the real banger node
// process against a real control plane (etcd and kube-apiserver on
// 127.0.0.1), its pods' images built from a real registry on 127.0.0.1
// and booted with QEMU. The state directory ($XDG_STATE_HOME) is a
// short one outside $WORK. $TEST_KERNEL is a directory holding the shared
// test kernel (vmlinux), for banger kernel import. The image commands
// (registry, push) are there, and pushguest REPO:TAG pushes an x86_64
// busybox image with dropbear started at boot. Besides:
//
//	controlplane     start a control plane (stopped when the script ends),
//	                 its admin kubeconfig in $KUBECONFIG and the CA of
//	                 the apiserver's kubelet client certificate in
//	                 $CLIENT_CA
//	pod create FILE  create the pod FILE (YAML or JSON, $VARS expanded)
//	                 describes, in namespace default unless it says
//	                 otherwise
//	pod wait [-again] NAME PHASE TIMEOUT
//	                 wait until pod NAME (namespace default) is in PHASE,
//	                 failing at once if it ends in another; with -again,
//	                 until it has been reported PHASE anew since the last
//	                 pod wait of NAME (its Ready condition changed time),
//	                 as a restarted node reports the pods it adopts
//	pod get NAME     print the pod's phase, reason, message, pod IP and
//	                 each container's state, readiness and restart count
//	pod events NAME  print the pod's events, oldest first: TYPE REASON: MESSAGE
//	pod delete NAME TIMEOUT
//	                 delete the pod and wait until it is gone from the API
//	                 (its node has stopped running it)
//	capture VAR REGEXP
//	                 set $VAR to REGEXP's first group in the last stdout
//
// VMMs still running when a script ends are killed.
func TestNodeScripts(t *testing.T) {
	kernel := filepath.Dir(guesttest.ExtractKernel(t, filepath.Join(t.TempDir(), "kernel")))
	cmds := imageScriptCmds()
	cmds["pushguest"] = pushGuestCmd(t, "x86_64")
	cmds["controlplane"] = cmdControlPlane
	cmds["pod"] = cmdPod
	cmds["capture"] = cmdCapture
	p := scriptParams(t, "node_*.txtar", cmds)
	base := p.Setup
	p.Setup = func(env *testscript.Env) error {
		if err := base(env); err != nil {
			return err
		}
		env.Setenv("TEST_KERNEL", kernel)
		// A state directory with a shorter path than $WORK's: the unix
		// sockets of a warm's throwaway VM (named after the image) would
		// not fit in 108 bytes there.
		state, err := os.MkdirTemp("", "bn")
		if err != nil {
			return err
		}
		env.Defer(func() { _ = os.RemoveAll(state) })
		env.Setenv("XDG_STATE_HOME", state)
		vms := filepath.Join(state, "banger", "vms")
		env.Defer(func() { killScriptVMMs(vms) })
		return nil
	}
	testscript.Run(t, p)
}

// controlplane: see TestNodeScripts.
func cmdControlPlane(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: controlplane")
	}
	dir := ts.MkAbs("controlplane")
	ts.Check(os.MkdirAll(dir, 0o755))
	cp, err := kubetest.StartIn(dir)
	ts.Check(err)
	ts.Defer(cp.Stop)
	stateOf(ts).values["controlplane"] = cp
	ts.Setenv("KUBECONFIG", cp.Kubeconfig)
	ts.Setenv("CLIENT_CA", cp.CAFile)
}

func controlPlaneOf(ts *testscript.TestScript) *kubetest.ControlPlane {
	cp, ok := stateOf(ts).values["controlplane"].(*kubetest.ControlPlane)
	if !ok {
		ts.Fatalf("no control plane (run controlplane first)")
	}
	return cp
}

// pod create|wait|get|events|delete: see TestNodeScripts.
func cmdPod(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: pod create|wait|get|events|delete ...")
	}
	cp := controlPlaneOf(ts)
	ctx := context.Background()
	pods := cp.Client.CoreV1().Pods(metav1.NamespaceDefault)
	switch sub, args := args[0], args[1:]; sub {
	case "create":
		if len(args) != 1 {
			ts.Fatalf("usage: pod create FILE")
		}
		var pod corev1.Pod
		ts.Check(yaml.UnmarshalStrict([]byte(os.Expand(ts.ReadFile(args[0]), ts.Getenv)), &pod))
		if pod.Namespace == "" {
			pod.Namespace = metav1.NamespaceDefault
		}
		_, err := cp.Client.CoreV1().Pods(pod.Namespace).Create(ctx, &pod, metav1.CreateOptions{})
		ts.Check(err)
	case "wait":
		again := len(args) > 0 && args[0] == "-again"
		if again {
			args = args[1:]
		}
		if len(args) != 3 {
			ts.Fatalf("usage: pod wait [-again] NAME PHASE TIMEOUT")
		}
		name, phase := args[0], corev1.PodPhase(args[1])
		timeout, err := time.ParseDuration(args[2])
		ts.Check(err)
		// When the last pod wait of the pod saw it become Ready.
		seen, _ := stateOf(ts).values["ready:"+name].(time.Time)
		deadline := time.Now().Add(timeout)
		last := "not found"
		for {
			pod, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				ts.Fatalf("pod %s: %v", name, err)
			}
			if err == nil {
				ready := readySince(pod)
				if pod.Status.Phase == phase && (!again || ready.After(seen)) {
					stateOf(ts).values["ready:"+name] = ready
					return
				}
				last = "phase " + string(pod.Status.Phase)
				if pod.Status.Reason != "" || pod.Status.Message != "" {
					last += fmt.Sprintf(" (%s: %s)", pod.Status.Reason, pod.Status.Message)
				}
				if ended(pod.Status.Phase) && pod.Status.Phase != phase {
					ts.Fatalf("pod %s ended in %s, want %s", name, last, phase)
				}
				if pod.Status.Phase == phase {
					last += fmt.Sprintf(", Ready since %s, not anew since the last pod wait", ready.Format(time.RFC3339))
				}
			}
			if time.Now().After(deadline) {
				ts.Fatalf("pod %s: %s after %s, want %s", name, last, timeout, phase)
			}
			time.Sleep(250 * time.Millisecond)
		}
	case "get":
		if len(args) != 1 {
			ts.Fatalf("usage: pod get NAME")
		}
		pod, err := pods.Get(ctx, args[0], metav1.GetOptions{})
		ts.Check(err)
		fmt.Fprint(ts.Stdout(), podSummary(pod))
	case "events":
		if len(args) != 1 {
			ts.Fatalf("usage: pod events NAME")
		}
		list, err := cp.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + args[0],
		})
		ts.Check(err)
		evs := list.Items
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].FirstTimestamp.Before(&evs[j].FirstTimestamp) })
		for _, e := range evs {
			fmt.Fprintf(ts.Stdout(), "%s %s: %s\n", e.Type, e.Reason, e.Message)
		}
	case "delete":
		if len(args) != 2 {
			ts.Fatalf("usage: pod delete NAME TIMEOUT")
		}
		timeout, err := time.ParseDuration(args[1])
		ts.Check(err)
		ts.Check(pods.Delete(ctx, args[0], metav1.DeleteOptions{}))
		deadline := time.Now().Add(timeout)
		for {
			_, err := pods.Get(ctx, args[0], metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return
			}
			ts.Check(err)
			if time.Now().After(deadline) {
				ts.Fatalf("pod %s still there %s after deleting it", args[0], timeout)
			}
			time.Sleep(250 * time.Millisecond)
		}
	default:
		ts.Fatalf("usage: pod create|wait|get|events|delete ...")
	}
}

func ended(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// readySince is when the pod's Ready condition last changed (zero if it
// has none).
func readySince(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// podSummary is what pod get prints.
func podSummary(pod *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase: %s\n", pod.Status.Phase)
	if pod.Status.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		fmt.Fprintf(&b, "message: %s\n", pod.Status.Message)
	}
	fmt.Fprintf(&b, "podIP: %s\n", pod.Status.PodIP)
	for _, c := range pod.Status.ContainerStatuses {
		var state string
		switch s := c.State; {
		case s.Running != nil:
			state = "running"
		case s.Waiting != nil:
			state = "waiting (" + s.Waiting.Reason + ")"
		case s.Terminated != nil:
			state = fmt.Sprintf("terminated (exit %d, %s)", s.Terminated.ExitCode, s.Terminated.Reason)
		}
		fmt.Fprintf(&b, "container %s: %s, ready %t, restarts %d\n", c.Name, state, c.Ready, c.RestartCount)
	}
	return b.String()
}

// capture VAR REGEXP: see TestNodeScripts.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile(`(?m)` + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture: no match for %q in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}
