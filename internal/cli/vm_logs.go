package cli

import (
	"github.com/spf13/cobra"
)

func newVMLogsCommand(g *globalOptions) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a VM's serial console log",
		Long: `Print the VM's serial console log: everything the guest (and its VMM)
wrote there, across boots. With -f, keep printing new output until the VM
stops.`,
		Example: `  banger vm logs web
  banger vm logs -f web`,
		Args:              exactArgs(1, "a VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.vmStore()
			if err != nil {
				return err
			}
			return s.Logs(cmd.Context(), args[0], cmd.OutOrStdout(), follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the VM stops")
	return cmd
}
