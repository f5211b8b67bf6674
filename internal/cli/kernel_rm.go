package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type kernelRmOptions struct{ force bool }

func newKernelRmCommand(g *globalOptions) *cobra.Command {
	var o kernelRmOptions
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
			return runKernelRm(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "remove even if images refer to the kernel")
	return cmd
}

func runKernelRm(ctx context.Context, g *globalOptions, o *kernelRmOptions, names []string) error {
	store, err := g.kernelStore()
	if err != nil {
		return err
	}
	return removeEach(ctx, g.Stdout, "kernel", names, o.force, func(ctx context.Context, name string, force bool) error {
		return store.Remove(ctx, name, force, g.kernelUsers)
	})
}
