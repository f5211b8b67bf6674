package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/progress"
	"github.com/thaloco/banger/internal/vm"
)

type imageWarmOptions struct {
	cpus       int
	memoryMiB  int
	vmm        string
	net        string
	hostAccess string
	timeout    time.Duration
}

func newImageWarmCommand(g *globalOptions) *cobra.Command {
	var o imageWarmOptions
	cmd := &cobra.Command{
		Use:   "warm IMAGE",
		Short: "Boot an image once and keep it ready as a snapshot",
		Long: `Boot IMAGE once in a throwaway VM, wait until it is ready, and save it as
the image's warm snapshot (IMAGE.warm, see "banger snapshot list"). From
then on "banger vm run IMAGE" and "banger vm create NAME --image IMAGE"
restore it instead of booting whenever the VM asks for the same CPUs,
memory, VMM, network mode and host access, and the image and kernel are
unchanged; --cold boots anyway. Warming again replaces the snapshot;
removing the image removes it.`,
		Example: `  banger image warm golden
  banger image warm golden --cpus 2 --memory 1G
  banger vm run --rm golden -- hostname`,
		Args: exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageWarm(cmd.Context(), g, &o, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.cpus, "cpus", vm.DefaultCPUs, "number of vCPUs")
	o.memoryMiB = vm.DefaultMemoryMiB
	f.Var(memoryValue{&o.memoryMiB}, "memory", "memory size, e.g. 512M or 2G")
	f.StringVar(&o.vmm, "vmm", "", "VMM: qemu, firecracker or auto (default $BANGER_VMM, else auto)")
	f.StringVar(&o.net, "net", "", "network: user, tap or none (default: user for QEMU, tap for Firecracker)")
	f.Var(hostAccessValue{&o.hostAccess}, "host-access", hostAccessUsage)
	f.DurationVar(&o.timeout, "timeout", vm.DefaultReadyTimeout, "how long to wait for the guest to be ready")
	return cmd
}

func runImageWarm(ctx context.Context, g *globalOptions, o *imageWarmOptions, args []string) error {
	mem := o.memoryMiB
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	m, err := s.WarmImage(ctx, args[0], vm.WarmOptions{CPUs: o.cpus, MemoryMiB: mem, VMM: o.vmm, Net: o.net, HostAccess: o.hostAccess, Timeout: o.timeout})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "image %s warmed: snapshot %s (%s, %d CPU(s), %dM, --net %s; %s on disk)\n",
		args[0], m.Name, m.VMM, m.CPUs, m.MemoryMiB, m.Net, progress.FormatBytes(m.DiskUsage()))
	return nil
}
