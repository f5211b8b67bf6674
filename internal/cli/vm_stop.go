package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/vm"
)

type vmStopOptions struct {
	force   bool
	timeout time.Duration
}

func newVMStopCommand(g *globalOptions) *cobra.Command {
	var o vmStopOptions
	cmd := &cobra.Command{
		Use:   "stop NAME...",
		Short: "Stop VMs gracefully (or at once with --force)",
		Long: `Stop VMs. banger presses Ctrl-Alt-Del in the guest (the power button
for arm64 guests on QEMU; over SSH it asks guests that see neither to
reboot), its init then shuts down or reboots, which ends the VMM; banger
waits up to --timeout, then kills the VMM. --force kills it at once.
Stopping a stopped VM is fine.`,
		Example: `  banger vm stop web
  banger vm stop web db --force`,
		Args:              minArgs(1, "at least one VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMStop(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "kill the VMM at once, without a graceful shutdown")
	cmd.Flags().DurationVar(&o.timeout, "timeout", vm.DefaultStopTimeout, "how long the guest may take to shut down before it is killed")
	return cmd
}

func runVMStop(ctx context.Context, g *globalOptions, o *vmStopOptions, names []string) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		was, err := s.Stop(ctx, name, vm.StopOptions{Force: o.force, Timeout: o.timeout})
		switch {
		case err != nil:
			errs = append(errs, err)
		case was:
			fmt.Fprintf(g.Stdout, "VM %s stopped\n", name)
		default:
			fmt.Fprintf(g.Stdout, "VM %s is not running\n", name)
		}
	}
	return errors.Join(errs...)
}
