// Package node makes a banger host a Kubernetes node: a virtual-kubelet
// provider that registers the host and runs the pods bound to it as
// microVMs.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/thaloco/banger/internal/vm"
)

// Taint keeps pods off banger nodes unless they tolerate it: a pod here
// runs as a microVM, which not every workload expects.
var Taint = corev1.Taint{Key: "banger.dev/microvm", Value: "true", Effect: corev1.TaintEffectNoSchedule}

// ErrNoClientCA is returned when the kubelet API is to be served without
// the CA that signs the apiserver's client certificate: without it any
// client could exec into pods.
var ErrNoClientCA = errors.New("serving the kubelet API needs the CA of the apiserver's kubelet client certificate")

// DefaultMaxPods is the pod capacity when Config.MaxPods is 0.
const DefaultMaxPods = 110

// DefaultCheckInterval is how often the host checks (QEMU, Firecracker,
// KVM) are run again when Config.CheckInterval is 0.
const DefaultCheckInterval = time.Minute

// Config describes the node.
type Config struct {
	// Name is the node's name.
	Name string
	// Client talks to the cluster's apiserver.
	Client kubernetes.Interface
	// NodeIP is the address other nodes reach this host at (optional).
	NodeIP string
	// MaxPods is the node's pod capacity (default DefaultMaxPods).
	MaxPods int
	// Version is banger's version, shown as the node's kubelet version.
	Version string
	// CheckInterval is how often the host is checked again.
	CheckInterval time.Duration
	// Log receives the node's log lines (default: discarded).
	Log io.Writer

	// VMs is the store the pods' VMs are created in.
	VMs *vm.Store
	// Source says what a container image's VMs are made from
	// (ImageBuilder.Source builds banger images).
	Source Source
	// Net is the pods' VMs' network (vm.NetTap, the default, or vm.NetUser).
	// On tap each pod's IP is its VM's own address, and its container
	// ports are reached there from the host; on user networking they
	// cannot be (an event PortsUnreachable says so).
	Net string
	// Warm makes pods' VMs restore their image's warm snapshot instead of
	// booting. The first pod of an image that has none fitting it waits
	// while the node makes one (vm.Store.WarmImage: a throwaway VM of the
	// image with that pod's CPUs, memory and network, booted and
	// snapshotted), once per image in the node's life; Kernel+Rootfs
	// sources have no image and always boot.
	Warm bool

	// ListenAddr, if set, serves the kubelet API there (HOST:PORT): the
	// apiserver reaches it for logs and exec. Only clients with a
	// certificate signed by ClientCAFile are let in.
	ListenAddr   string
	ClientCAFile string
	// TLSCertFile and TLSKeyFile are the API's certificate (default: a
	// self-signed one).
	TLSCertFile, TLSKeyFile string

	// host and checks replace the host's real resources and checks in
	// tests; memAvailable replaces MemAvailable, so that a test can give
	// the host less memory than it has (a fault no real part produces on
	// demand); restartBackoff shortens the first restart back-off.
	host           *Resources
	checks         func() Checks
	memAvailable   func() (int64, error)
	restartBackoff time.Duration
}

// Run registers the node and serves it until ctx ends. ready, if not nil,
// is closed once the node is registered and its controllers run.
func Run(ctx context.Context, cfg Config, ready chan<- struct{}) error {
	if cfg.Client == nil || cfg.VMs == nil || cfg.Source == nil {
		return errors.New("node: a Kubernetes client, a VM store and an image source are needed")
	}
	w := cfg.Log
	if w == nil {
		w = io.Discard
	}
	ctx = vklog.WithLogger(ctx, vkslog.FromSlog(slog.New(slog.NewTextHandler(w, nil))))
	host := cfg.host
	if host == nil {
		h, err := HostResources()
		if err != nil {
			return err
		}
		host = &h
	}
	checks := cfg.checks
	if checks == nil {
		checks = CheckHost
	}
	spec := nodeSpec(cfg, *host, checks())
	np := &nodeStatus{checks: checks, interval: cfg.CheckInterval, node: spec.DeepCopy()}
	if np.interval == 0 {
		np.interval = DefaultCheckInterval
	}
	// Events go through a broadcaster of ours, so that the provider can
	// record them too (why a pod's VM failed).
	eb := record.NewBroadcaster()
	eb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Client.CoreV1().Events(metav1.NamespaceAll)})
	defer eb.Shutdown()
	recorder := eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "banger-node", Host: cfg.Name})
	opts := []nodeutil.NodeOpt{nodeutil.WithClient(cfg.Client)}
	var mux *http.ServeMux
	if cfg.ListenAddr != "" {
		_, port, err := net.SplitHostPort(cfg.ListenAddr)
		if err != nil {
			return fmt.Errorf("kubelet API address %q: %w", cfg.ListenAddr, err)
		}
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil || p == 0 {
			return fmt.Errorf("kubelet API address %q: give a port", cfg.ListenAddr)
		}
		spec.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
		if cfg.ClientCAFile == "" {
			return ErrNoClientCA
		}
		cert, err := servingCert(cfg)
		if err != nil {
			return err
		}
		mux = http.NewServeMux()
		opts = append(opts, nodeutil.AttachProviderRoutes(mux), nodeutil.WithTLSConfig(
			func(c *tls.Config) error { c.Certificates = append(c.Certificates, cert); return nil },
			nodeutil.WithCAFromPath(cfg.ClientCAFile)))
	}
	opts = append(opts, func(nc *nodeutil.NodeConfig) error {
		nc.NodeSpec = *spec
		nc.EventRecorder = recorder
		nc.NumWorkers = min(runtime.NumCPU(), 4)
		if mux != nil {
			nc.Handler, nc.HTTPListenAddr = mux, cfg.ListenAddr
		}
		return nil
	})
	prov := newProvider(cfg, recorder)
	// The VMs outlive the node: when it stops, it only stops watching
	// them, and the next node adopts them.
	defer prov.stopWatching()
	n, err := nodeutil.NewNode(cfg.Name,
		func(nodeutil.ProviderConfig) (nodeutil.Provider, vknode.NodeProvider, error) {
			return prov, np, nil
		},
		opts...,
	)
	if err != nil {
		return fmt.Errorf("setting up node %s: %w", cfg.Name, err)
	}
	go func() {
		select {
		case <-n.Ready():
		case <-n.Done():
			return
		}
		// A pod VM whose pod is neither bound here in the API nor run by
		// the provider belongs to a pod deleted while no node ran.
		if err := prov.removeOrphans(ctx, cfg.Client, cfg.Name); err != nil {
			vklog.G(ctx).Warnf("removing the VMs of deleted pods: %v", err)
		}
		if ready != nil {
			close(ready)
		}
	}()
	if err := n.Run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("node %s: %w", cfg.Name, err)
	}
	return nil
}

// nodeSpec is the Node object registered for cfg on a host with host's
// resources and checks.
func nodeSpec(cfg Config, host Resources, c Checks) *corev1.Node {
	maxPods := cfg.MaxPods
	if maxPods == 0 {
		maxPods = DefaultMaxPods
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: cfg.Name,
			Labels: map[string]string{
				"type":                   "virtual-kubelet",
				"kubernetes.io/role":     "agent",
				"kubernetes.io/hostname": cfg.Name,
				corev1.LabelArchStable:   runtime.GOARCH,
				corev1.LabelOSStable:     "linux",
				Taint.Key:                Taint.Value,
			},
		},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{Taint}},
		Status: corev1.NodeStatus{
			Phase:       corev1.NodeRunning,
			Capacity:    host.list(maxPods),
			Allocatable: host.Allocatable().list(maxPods),
			Conditions:  c.conditions(metav1.Now()),
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:    runtime.GOARCH,
				OperatingSystem: "linux",
				KubeletVersion:  cfg.Version,
			},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: cfg.Name}},
		},
	}
	if cfg.NodeIP != "" {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: cfg.NodeIP})
	}
	return n
}

// Client rates: a node's API traffic (status of every pod, events,
// leases) is a kubelet's, so it gets the kubelet's default client limits
// rather than client-go's 5 requests a second, which made a pod's
// Running status wait behind its own events.
const (
	ClientQPS   = 50
	ClientBurst = 100
)

// NewClient is a Kubernetes client for a node from cfg (not changed): the
// node's rate limits where cfg sets none.
func NewClient(cfg *rest.Config) (kubernetes.Interface, error) {
	c := rest.CopyConfig(cfg)
	if c.QPS == 0 {
		c.QPS = ClientQPS
	}
	if c.Burst == 0 {
		c.Burst = ClientBurst
	}
	client, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", c.Host, err)
	}
	return client, nil
}
