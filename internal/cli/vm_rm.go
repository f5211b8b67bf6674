package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type vmRmOptions struct{ force bool }

func newVMRmCommand(g *globalOptions) *cobra.Command {
	var o vmRmOptions
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
			return runVMRm(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVarP(&o.force, "force", "f", false, "remove running (or broken) VMs too, killing their VMM")
	return cmd
}

func runVMRm(ctx context.Context, g *globalOptions, o *vmRmOptions, names []string) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	return removeEach(ctx, g.Stdout, "VM", names, o.force, s.Remove)
}
