package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kubetest"
)

// serverConfig is the config of test/server: its entrypoint, run as
// nobody, greets with the image's and the container's environment and
// its user and home, prints five lines, waits for /tmp/go, then says so
// and sleeps.
var serverConfig = image.Config{
	Entrypoint: []string{"/bin/sh", "-c"},
	Cmd:        []string{`echo "$GREETING to $WHO in $(pwd) as $(id -u) at $HOME"; for i in 1 2 3 4 5; do echo line $i; done; while [ ! -e /tmp/go ]; do sleep 0.2; done; echo after the follow started; exec sleep 1000`},
	Env:        []string{"GREETING=hello from the image", "WHO=nobody"},
	WorkingDir: "/tmp",
	User:       "nobody",
}

// TestPodProcess: a pod without a command runs its image's entrypoint
// with the image's environment, working directory (the container's
// variable, from a ConfigMap, winning) and user (kubectl exec too); kubectl logs honours tailLines and limitBytes and
// follows the log as the process writes it; kubectl exec with a TTY gets
// a terminal of the client's size, reads stdin and returns exit codes.
func TestPodProcess(t *testing.T) {
	cp := kubetest.Start(t)
	store, source := testStore(t)
	cfg := testConfig(t, cp, store, source)
	runNode(t, cfg)
	ctx := context.Background()
	pods := cp.Client.CoreV1().Pods("default")
	pod := testPod("server", "test/server")
	// The container's variable comes from a ConfigMap, which
	// virtual-kubelet resolves before the node sees the pod.
	if _, err := cp.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "server-config"}, Data: map[string]string{"who": "the pod"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "WHO", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "server-config"}, Key: "who"},
	}}}
	if _, err := cp.Client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "server-secret"}, Data: map[string][]byte{"token": []byte("s3cret"), "unused": []byte("x"), "other": []byte("y")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "server-config"}}}},
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "server-secret",
			Items: []corev1.KeyToPath{{Key: "token", Path: "nested/token", Mode: ptr(int32(0o440))}, {Key: "unused", Path: "plain"}}}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}}},
		{Name: "opt", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "server-config"},
			Optional: ptr(true), Items: []corev1.KeyToPath{{Key: "who", Path: "who"}, {Key: "missing", Path: "missing"}}}}},
	}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "scratch", MountPath: "/scratch"}, {Name: "config", MountPath: "/etc/server"},
		{Name: "secret", MountPath: "/etc/secret"}, {Name: "host", MountPath: "/host"}, {Name: "opt", MountPath: "/etc/opt"},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, cp.Client, "server", 4*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodFailed
	})
	if p.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod server: %s %s", p.Status.Reason, p.Status.Message)
	}
	const head = "hello from the image to the pod in /tmp as 65534 at /nonexistent\nline 1\nline 2\nline 3\nline 4\nline 5\n"
	logs := waitLogs(t, cp, "server", func(logs string) bool { return strings.Contains(logs, "line 5") })
	if logs != head {
		t.Errorf("logs of pod server: %q, want %q", logs, head)
	}
	for _, tc := range []struct {
		opts corev1.PodLogOptions
		want string
	}{
		{corev1.PodLogOptions{TailLines: ptr(int64(2))}, "line 4\nline 5\n"},
		{corev1.PodLogOptions{LimitBytes: ptr(int64(5))}, "hello"},
		{corev1.PodLogOptions{TailLines: ptr(int64(1)), LimitBytes: ptr(int64(4))}, "line"},
	} {
		if got, err := pods.GetLogs("server", &tc.opts).DoRaw(ctx); err != nil || string(got) != tc.want {
			t.Errorf("logs with tail %v, limit %v: %q, %v; want %q", deref(tc.opts.TailLines), deref(tc.opts.LimitBytes), got, err, tc.want)
		}
	}

	// A process never restarted has no previous log, as with a kubelet.
	got, err := pods.GetLogs("server", &corev1.PodLogOptions{Previous: true}).DoRaw(ctx)
	var status metav1.Status
	if !apierrors.IsBadRequest(err) || json.Unmarshal(got, &status) != nil || !strings.Contains(status.Message, `previous terminated container "main" in pod "server" not found`) {
		t.Errorf("previous logs of a pod never restarted: %q, %v; want a bad request saying there is none", got, err)
	}

	// Follow: a line written after the stream opened comes through it.
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	stream, err := pods.GetLogs("server", &corev1.PodLogOptions{Follow: true}).Stream(fctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	lines := bufio.NewScanner(stream)
	readUntil := func(want string) {
		t.Helper()
		var seen []string
		for lines.Scan() {
			seen = append(seen, lines.Text())
			if lines.Text() == want {
				return
			}
		}
		t.Fatalf("following the log: %q before %v, want a line %q", seen, lines.Err(), want)
	}
	readUntil("line 5")
	if out, err := execIn(ctx, cp, "server", "touch", "/tmp/go"); err != nil {
		t.Fatalf("exec touch: %q, %v", out, err)
	}
	readUntil("after the follow started")

	// emptyDir, configMap and secret volumes are in the guest (the
	// items' paths and modes kept); the hostPath one is not, and the pod
	// is told so.
	for _, tc := range []struct{ cmd, want string }{
		{"touch /scratch/mine && ls -ld /scratch | cut -c1-10", "drwxrwxrwx"},
		{"cat /etc/server/who", "the pod"},
		// The items asked for, with their modes: nobody may not read
		// the 0440 one.
		{"stat -c %a /etc/secret/nested/token; ls /etc/secret; cat /etc/secret/nested/token 2>/dev/null || echo unreadable; cat /etc/secret/plain", "440\nnested\nplain\nunreadable\nx"},
		{"test -e /host || echo absent", "absent"},
		// An optional volume's missing key is left out.
		{"ls /etc/opt", "who"},
		// configMap and secret volumes are each a tmpfs (hiding what
		// the image has there); the emptyDir is on the disk.
		{"grep banger-volume /proc/mounts | cut -d' ' -f2,3", "/etc/server tmpfs\n/etc/secret tmpfs\n/etc/opt tmpfs"},
	} {
		out, err := execIn(ctx, cp, "server", "/bin/sh", "-c", tc.cmd)
		if err != nil || strings.TrimSpace(out) != tc.want {
			t.Errorf("in pod server, %s: %q, %v; want %q", tc.cmd, out, err, tc.want)
		}
	}
	if ev := waitEvent(t, cp, "server", ReasonVolumesNotMounted); ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "/host (hostPath host)") || strings.Contains(ev.Message, "scratch") {
		t.Errorf("event for pod server: %s %q; want a warning naming /host alone", ev.Type, ev.Message)
	}

	checkStats(t, cp, cfg.ListenAddr, "server")

	// kubectl exec runs as the container's user.
	if out, err := execIn(ctx, cp, "server", "id", "-u"); err != nil || strings.TrimSpace(out) != "65534" {
		t.Errorf("exec id -u: %q, %v; want 65534 (nobody, the image's user)", out, err)
	}

	// The command is an argument vector: one word with spaces is one
	// program's name, as with a kubelet, not a shell line (which would run
	// the pipeline's second half as root).
	var notFound exec.CodeExitError
	if out, err := execIn(ctx, cp, "server", "id -u | cat"); !errors.As(err, &notFound) || notFound.Code != 127 || strings.Contains(out, "65534") {
		t.Errorf("exec of the one word \"id -u | cat\": %q, %v; want exit 127, no such program", out, err)
	}

	// Exit codes come back as kubectl reads them.
	_, err = execIn(ctx, cp, "server", "sh", "-c", "exit 3")
	var ce exec.CodeExitError
	if !errors.As(err, &ce) || ce.Code != 3 {
		t.Errorf("exec exit 3: %v (%T), want a CodeExitError with code 3", err, err)
	}

	// A TTY: the guest command has a terminal of the client's size.
	size := remotecommand.TerminalSize{Width: 100, Height: 30}
	if out, err := execTTY(ctx, cp, "server", size, nil, "stty", "size"); err != nil || strings.TrimSpace(out) != "30 100" {
		t.Errorf("exec -t stty size: %q, %v; want 30 100", out, err)
	}
	if out, err := execTTY(ctx, cp, "server", size, nil, "tty"); err != nil || !strings.HasPrefix(strings.TrimSpace(out), "/dev/pts/") {
		t.Errorf("exec -t tty: %q, %v; want a /dev/pts device", out, err)
	}
	out, err := execTTY(ctx, cp, "server", size, strings.NewReader("typed\n"), "sh", "-c", "read line; echo got:$line; exit 4")
	if !errors.As(err, &ce) || ce.Code != 4 || !strings.Contains(out, "got:typed") {
		t.Errorf("exec -it reading stdin, exit 4: %q, %v; want got:typed and a CodeExitError with code 4", out, err)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// execTTY runs command in the pod as kubectl exec -t does: a terminal of
// size, stdin if not nil. It returns the terminal's output.
func execTTY(ctx context.Context, cp *kubetest.ControlPlane, pod string, size remotecommand.TerminalSize, stdin io.Reader, command ...string) (string, error) {
	req := cp.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: command, Stdin: stdin != nil, Stdout: true, TTY: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(cp.Config, "POST", req.URL())
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Tty: true, TerminalSizeQueue: &oneSize{size: size, done: ctx.Done()}})
	return out.String(), err
}

// oneSize is a terminal that reports its size once and never changes.
type oneSize struct {
	size remotecommand.TerminalSize
	sent bool
	done <-chan struct{}
}

func (s *oneSize) Next() *remotecommand.TerminalSize {
	if !s.sent {
		s.sent = true
		return &s.size
	}
	<-s.done
	return nil
}

// checkStats reads the statistics of the node serving its kubelet API
// at addr as metrics-server does, straight from it with the apiserver's
// kubelet client certificate: pod's VM (running) is in both the summary
// and the resource metrics, with CPU time and memory, and a second
// summary has a CPU rate.
func checkStats(t *testing.T, cp *kubetest.ControlPlane, addr, pod string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(cp.KubeletClientCert, cp.KubeletClientKey)
	if err != nil {
		t.Fatal(err)
	}
	// The node's serving certificate is self-signed (no --tls-cert-file).
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, //nolint:gosec // a test's own node
	}}}
	get := func(path string) []byte {
		t.Helper()
		resp, err := client.Get("https://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s, %v", path, resp.Status, body, err)
		}
		return body
	}
	var sum statsv1alpha1.Summary
	for range 2 {
		raw := get("/stats/summary")
		if err := json.Unmarshal(raw, &sum); err != nil {
			t.Fatalf("stats summary %s: %v", raw, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sum.Node.NodeName != "banger-test" || sum.Node.CPU == nil || sum.Node.CPU.UsageCoreNanoSeconds == nil || sum.Node.Memory == nil || sum.Node.Memory.WorkingSetBytes == nil {
		t.Errorf("stats summary's node: %+v", sum.Node)
	}
	var found bool
	for _, ps := range sum.Pods {
		if ps.PodRef.Name != pod {
			continue
		}
		found = true
		if ps.CPU == nil || ps.CPU.UsageCoreNanoSeconds == nil || *ps.CPU.UsageCoreNanoSeconds == 0 || ps.CPU.UsageNanoCores == nil ||
			ps.Memory == nil || ps.Memory.WorkingSetBytes == nil || *ps.Memory.WorkingSetBytes < 10<<20 ||
			len(ps.Containers) != 1 || ps.Containers[0].Name != "main" || ps.Containers[0].CPU == nil {
			t.Errorf("stats summary of pod %s: %+v; want its VM's CPU time and rate, memory over 10 MiB, and container main", pod, ps)
		}
	}
	if !found {
		t.Errorf("stats summary has no pod %s: %+v", pod, sum.Pods)
	}
	raw := get("/metrics/resource")
	for _, want := range []string{
		`container_cpu_usage_seconds_total{container="main",namespace="default",pod="` + pod + `"} `,
		`container_memory_working_set_bytes{container="main",namespace="default",pod="` + pod + `"} `,
		`pod_memory_working_set_bytes{namespace="default",pod="` + pod + `"} `,
		"node_cpu_usage_seconds_total ",
		"scrape_error 0",
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("resource metrics have no %q:\n%s", want, raw)
		}
	}
}
