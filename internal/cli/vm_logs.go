package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type vmLogsOptions struct{ follow bool }

func newVMLogsCommand(g *globalOptions) *cobra.Command {
	var o vmLogsOptions
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
			return runVMLogs(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new output until the VM stops")
	return cmd
}

func runVMLogs(ctx context.Context, g *globalOptions, o *vmLogsOptions, args []string) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	return s.Logs(ctx, args[0], g.Stdout, o.follow)
}
