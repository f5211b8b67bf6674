package cli

import "github.com/spf13/cobra"

func newVMCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Create, run and manage microVMs",
	}
	return cmd
}
