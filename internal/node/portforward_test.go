package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/thaloco/banger/internal/kubetest"
)

// TestPodPortForward: kubectl port-forward (SPDY through the apiserver to
// the node's kubelet API) reaches a port the pod serves only on its own
// loopback, for one connection after another; a port nothing listens on
// fails the connection instead of hanging.
func TestPodPortForward(t *testing.T) {
	cp := kubetest.Start(t)
	store, source := testStore(t)
	runNode(t, testConfig(t, cp, store, source))
	ctx := context.Background()
	pod := testPod("web", "test/busybox", "/bin/sh", "-c",
		"mkdir -p /www && echo served on the loopback >/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www")
	if _, err := cp.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, cp.Client, "web", 4*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodFailed
	})
	if p.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod web: %s %s", p.Status.Reason, p.Status.Message)
	}

	local := forwardPorts(t, cp, "web", "8080", "8081")
	get := func(port uint16) (string, error) {
		c := &http.Client{Timeout: 20 * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	// httpd may still be starting when the pod is Running.
	var body string
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if body, err = get(local[0]); err == nil {
			break
		}
	}
	if err != nil || body != "served on the loopback\n" {
		t.Fatalf("GET through the forward of port 8080: %q, %v", body, err)
	}
	if body, err := get(local[0]); err != nil || body != "served on the loopback\n" {
		t.Errorf("second GET through the same forward: %q, %v", body, err)
	}
	if body, err := get(local[1]); err == nil {
		t.Errorf("GET through the forward of port 8081, where nothing listens: %q, want an error", body)
	}
}

// forwardPorts forwards free local ports on 127.0.0.1 to the pod's ports
// as kubectl port-forward does, until the test ends, and returns them.
func forwardPorts(t *testing.T, cp *kubetest.ControlPlane, pod string, ports ...string) []uint16 {
	t.Helper()
	rt, upgrader, err := spdy.RoundTripperFor(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	req := cp.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource("portforward")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, req.URL())
	specs := make([]string, len(ports))
	for i, p := range ports {
		specs[i] = "0:" + p
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	// Its connections print from goroutines of their own: nothing to keep.
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, specs, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward to pod %s: %v", pod, err)
	case <-time.After(time.Minute):
		t.Fatalf("port-forward to pod %s: not ready after a minute", pod)
	}
	fp, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	local := make([]uint16, len(fp))
	for i, p := range fp {
		local[i] = p.Local
	}
	return local
}
