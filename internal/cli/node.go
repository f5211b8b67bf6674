package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/thaloco/banger/internal/imagebuild"
	"github.com/thaloco/banger/internal/node"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/vm"
)

type nodeOptions struct {
	kubeconfig string
	name       string
	nodeIP     string
	maxPods    int
	kernel     string
	net        string
	warm       bool
	listen     string
	clientCA   string
	tlsCert    string
	tlsKey     string
}

func (o *nodeOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to join (default $KUBECONFIG, else the in-cluster config, else ~/.kube/config)")
	f.StringVar(&o.name, "node-name", "", "name of the node (default: this host's name, lower-cased)")
	f.StringVar(&o.nodeIP, "node-ip", "", "address of this host that the node reports as its InternalIP")
	f.IntVar(&o.maxPods, "max-pods", node.DefaultMaxPods, "most pods (VMs) the node accepts")
	f.StringVar(&o.listen, "listen", ":10250", "address of the kubelet API the apiserver reaches for logs and exec (\"\" serves none)")
	f.StringVar(&o.clientCA, "client-ca-file", "", "CA of the apiserver's kubelet client certificate; only clients it signed reach the kubelet API (needed with --listen)")
	f.StringVar(&o.tlsCert, "tls-cert-file", "", "certificate of the kubelet API (default: a self-signed one)")
	f.StringVar(&o.tlsKey, "tls-key-file", "", "key of --tls-cert-file")
	f.StringVar(&o.kernel, "kernel", imagebuild.DefaultKernel, "installed kernel the pods' images boot with")
	f.StringVar(&o.net, "net", vm.NetTap, "network of the pods' VMs: tap (each pod's IP is its VM's own address, its container ports reached there) or user (QEMU's user networking, every pod at the same private guest address, its ports unreachable)")
	f.BoolVar(&o.warm, "warm", true, "restore pods' VMs from their image's warm snapshot, made with the first pod's CPUs and memory when none fits (--warm=false boots every pod)")
}

func newNodeCommand(g *globalOptions) *cobra.Command {
	var o nodeOptions
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Join a Kubernetes cluster as a node whose pods run as microVMs",
		Long: `Register this host as a Kubernetes node (a virtual kubelet) and run
until interrupted. The node's capacity is the host's CPUs and memory; its
allocatable resources keep back a reserve for the host and the VMMs (half
a CPU, and 1 GiB or a tenth of the memory, whichever is more). It carries
the taint banger.dev/microvm=true:NoSchedule, so only pods that tolerate
it are scheduled here, and conditions that say whether QEMU, Firecracker
and KVM are usable. Each pod bound to the node runs as one VM: its first
container's image is built into a banger image (with --kernel), and the
container's command and args, or else the image's entrypoint and cmd, run
as the guest's main process. When it exits, the pod's restart policy
runs it again after a back-off (Always; OnFailure if it failed) or ends
the pod with its exit status (Never). With --net tap (the default) the
pod's IP is its VM's own address and its container ports are reached
there. With --warm (the default) the first pod of an image waits while
the node boots the image once with that pod's CPUs and memory and
snapshots it; later pods of the image that ask for the same restore the
snapshot instead of booting. A pod whose kernel is not installed, or
that asks for more memory than the host has available, fails at once
with an event saying so (KernelMissing, OutOfMemory). See "Kubernetes
nodes" in the README.`,
		Example: `  banger node --kubeconfig /etc/banger/node.kubeconfig --client-ca-file /etc/banger/cluster-ca.crt
  banger node --node-name rack1-host3 --node-ip 10.0.0.13`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNode(cmd.Context(), g, &o, args)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func runNode(ctx context.Context, g *globalOptions, o *nodeOptions, _ []string) error {
	cfg, err := o.restConfig(g)
	if err != nil {
		return err
	}
	client, err := node.NewClient(cfg)
	if err != nil {
		return err
	}
	name := o.name
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w (hint: pass --node-name)", err)
		}
		name = strings.ToLower(h)
	}
	vms, err := g.vmStore()
	if err != nil {
		return err
	}
	images, err := g.imageStore()
	if err != nil {
		return err
	}
	l, err := g.layout()
	if err != nil {
		return err
	}
	key, err := sshkey.Ensure(l.SSHDir())
	if err != nil {
		return err
	}
	builder := &node.ImageBuilder{Store: images, Options: imagebuild.Options{
		KernelRef:     o.kernel,
		CacheDir:      filepath.Join(l.CacheDir(), "images"),
		AuthorizedKey: key.Public,
		CheckKernel:   g.checkKernel,
		KernelArch:    g.kernelArch,
	}}
	ready := make(chan struct{})
	go func() {
		select {
		case <-ready:
			fmt.Fprintf(g.Stderr, "banger: node %s registered with %s\n", name, cfg.Host)
		case <-ctx.Done():
		}
	}()
	return node.Run(ctx, node.Config{
		Name:    name,
		Client:  client,
		NodeIP:  o.nodeIP,
		MaxPods: o.maxPods,
		Version: "banger-" + versionString(),
		Log:     g.Stderr,
		VMs:     vms,
		Source:  builder.Source,
		Net:     o.net,
		Warm:    o.warm,

		ListenAddr: o.listen, ClientCAFile: o.clientCA,
		TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey,
	}, ready)
}

// restConfig finds the cluster: --kubeconfig, $KUBECONFIG, the in-cluster
// service account, ~/.kube/config, in that order.
func (o *nodeOptions) restConfig(g *globalOptions) (*rest.Config, error) {
	path := o.kubeconfig
	if path == "" {
		path = g.Getenv("KUBECONFIG")
	}
	if path == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		} else if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		home := g.Getenv("HOME")
		if home == "" {
			return nil, errors.New("no kubeconfig (hint: pass --kubeconfig or set KUBECONFIG)")
		}
		path = filepath.Join(home, ".kube", "config")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w (hint: pass --kubeconfig)", path, err)
	}
	return cfg, nil
}
