package node

import (
	"context"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// provider runs the node's pods. Running them as microVMs is not built
// yet: a pod bound here is refused with an event saying so.
type provider struct {
	cfg Config
}

func newProvider(cfg Config, _ nodeutil.ProviderConfig) *provider {
	return &provider{cfg: cfg}
}

var errNoPods = errdefs.InvalidInput("banger node does not run pods yet")

func (p *provider) CreatePod(context.Context, *corev1.Pod) error { return errNoPods }
func (p *provider) UpdatePod(context.Context, *corev1.Pod) error { return nil }
func (p *provider) DeletePod(context.Context, *corev1.Pod) error { return nil }

func (p *provider) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	return nil, errdefs.NotFoundf("pod %s/%s is not on this node", ns, name)
}

func (p *provider) GetPodStatus(_ context.Context, ns, name string) (*corev1.PodStatus, error) {
	return nil, errdefs.NotFoundf("pod %s/%s is not on this node", ns, name)
}

func (p *provider) GetPods(context.Context) ([]*corev1.Pod, error) { return nil, nil }

func (p *provider) GetContainerLogs(_ context.Context, ns, pod, _ string, _ api.ContainerLogOpts) (io.ReadCloser, error) {
	return nil, errdefs.NotFoundf("pod %s/%s is not on this node", ns, pod)
}

func (p *provider) RunInContainer(_ context.Context, ns, pod, _ string, _ []string, _ api.AttachIO) error {
	return errdefs.NotFoundf("pod %s/%s is not on this node", ns, pod)
}

func (p *provider) AttachToContainer(_ context.Context, ns, pod, _ string, _ api.AttachIO) error {
	return errdefs.InvalidInputf("pod %s/%s: attaching is not supported", ns, pod)
}

func (p *provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{}, nil
}

func (p *provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) { return nil, nil }

func (p *provider) PortForward(_ context.Context, ns, pod string, _ int32, _ io.ReadWriteCloser) error {
	return errdefs.InvalidInputf("pod %s/%s: port forwarding is not supported", ns, pod)
}
