package cli

import "github.com/spf13/cobra"

func newKernelCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernel",
		Short: "Manage kernels: pull from the catalog, import, list, remove",
	}
	return cmd
}
