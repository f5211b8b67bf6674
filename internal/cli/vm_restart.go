package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/vm"
)

func newVMRestartCommand(g *globalOptions) *cobra.Command {
	var stop vm.StopOptions
	var start vm.StartOptions
	var timing bool
	cmd := &cobra.Command{
		Use:               "restart NAME...",
		Short:             "Stop VMs (if running) and start them again",
		Example:           `  banger vm restart web`,
		Args:              minArgs(1, "at least one VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMRestart(cmd.Context(), g, args, stop, start, timing, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&stop.Force, "force", false, "kill the VMM at once instead of shutting the guest down")
	cmd.Flags().DurationVar(&stop.Timeout, "stop-timeout", vm.DefaultStopTimeout, "how long the guest may take to shut down before it is killed")
	cmd.Flags().DurationVar(&start.Timeout, "timeout", vm.DefaultReadyTimeout, "how long to wait for the guest to be ready")
	cmd.Flags().BoolVar(&timing, "timing", false, "print the boot timings")
	return cmd
}

func runVMRestart(ctx context.Context, g *globalOptions, names []string, stop vm.StopOptions, start vm.StartOptions, timing bool, w io.Writer) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if _, err := s.Stop(ctx, name, stop); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := runVMStart(ctx, g, []string{name}, start, timing, w); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
