package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

func newVMRmCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove VMs: their disk, state and network",
		Long: `Remove VMs with everything banger made for them: the VM directory with
its disk and console log, and for tap networking its tap device, rules
and address lease. A running VM is refused unless --force, which kills
its VMM first (no VMM is left running).`,
		Example: `  banger vm rm web
  banger vm rm web db --force`,
		Args:              minArgs(1, "at least one VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMRm(cmd.Context(), g, args, force, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove running (or broken) VMs too, killing their VMM")
	return cmd
}

func runVMRm(ctx context.Context, g *globalOptions, names []string, force bool, w io.Writer) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	return removeEach(ctx, w, "VM", names, force, s.Remove)
}
