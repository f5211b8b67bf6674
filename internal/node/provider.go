package node

import (
	"context"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"k8s.io/client-go/tools/record"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// provider is the node's virtual-kubelet provider: pods run as VMs
// (pods); attaching and statistics are not offered yet.
type provider struct{ *pods }

func newProvider(cfg Config, recorder record.EventRecorder) provider {
	net := cfg.Net
	if net == "" {
		net = "tap"
	}
	p := &pods{store: cfg.VMs, client: cfg.Client, source: cfg.Source, net: net, hostIP: cfg.NodeIP, recorder: recorder, byKey: map[string]*podRun{},
		memAvailable: cfg.memAvailable, backoff: cfg.restartBackoff}
	if p.memAvailable == nil {
		p.memAvailable = MemAvailable
	}
	if cfg.Warm {
		p.warm = &warmer{store: cfg.VMs}
	}
	return provider{p}
}

func (p provider) AttachToContainer(_ context.Context, ns, pod, _ string, _ api.AttachIO) error {
	return errdefs.InvalidInputf("pod %s/%s: attaching is not supported (hint: kubectl exec)", ns, pod)
}

func (p provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{}, nil
}

func (p provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) { return nil, nil }
