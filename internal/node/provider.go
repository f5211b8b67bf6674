package node

import (
	"k8s.io/client-go/tools/record"
)

// provider is the node's virtual-kubelet provider: pods run as VMs
// (pods), their statistics are their VMs' (stats.go).
type provider struct {
	*pods
	nodeName string
	rates    *rates
}

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
	return provider{pods: p, nodeName: cfg.Name, rates: &rates{}}
}
