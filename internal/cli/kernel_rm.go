package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

func newKernelRmCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove installed kernels",
		Long: `Remove installed kernels. A kernel that an image refers to is kept
unless --force is given. Nothing but the kernel's own directory is touched.`,
		Example: `  banger kernel rm generic-6.12
  banger kernel rm old-6.6 old-6.8 --force`,
		Args: minArgs(1, "at least one kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelRm(cmd.Context(), force, g, args, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove even if images refer to the kernel")
	return cmd
}

func runKernelRm(ctx context.Context, force bool, g *globalOptions, names []string, w io.Writer) error {
	store, err := g.kernelStore()
	if err != nil {
		return err
	}
	return removeEach(ctx, w, "kernel", names, force, func(ctx context.Context, name string, force bool) error {
		return store.Remove(ctx, name, force, g.kernelUsers)
	})
}
