package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/vm"
)

type vmRestartOptions struct {
	force       bool
	stopTimeout time.Duration
	start       vmStartOptions
}

func newVMRestartCommand(g *globalOptions) *cobra.Command {
	var o vmRestartOptions
	cmd := &cobra.Command{
		Use:               "restart NAME...",
		Short:             "Stop VMs (if running) and start them again",
		Example:           `  banger vm restart web`,
		Args:              minArgs(1, "at least one VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMRestart(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "kill the VMM at once instead of shutting the guest down")
	cmd.Flags().DurationVar(&o.stopTimeout, "stop-timeout", vm.DefaultStopTimeout, "how long the guest may take to shut down before it is killed")
	o.start.addFlags(cmd.Flags())
	return cmd
}

func runVMRestart(ctx context.Context, g *globalOptions, o *vmRestartOptions, names []string) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if _, err := s.Stop(ctx, name, vm.StopOptions{Force: o.force, Timeout: o.stopTimeout}); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := startEach(ctx, g.Stdout, s, &o.start, []string{name}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
