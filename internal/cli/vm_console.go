package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/vm"
)

// vmConsoleOptions: vm console has no flags.
type vmConsoleOptions struct{}

func newVMConsoleCommand(g *globalOptions) *cobra.Command {
	var o vmConsoleOptions
	return &cobra.Command{
		Use:   "console NAME",
		Short: "Attach to a running VM's serial console (detach with Ctrl-])",
		Long: `Attach the terminal to a running VM's serial console. Keys, Ctrl-C
included, go to the guest; type Ctrl-] to detach (the VM keeps running).
The session also ends when the VM stops. One session at a time.`,
		Example:           `  banger vm console web`,
		Args:              exactArgs(1, "a VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMConsole(cmd.Context(), g, &o, args)
		},
	}
}

func runVMConsole(ctx context.Context, g *globalOptions, _ *vmConsoleOptions, args []string) error {
	name := args[0]
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "banger: connected to the console of VM %s; detach with %s\r\n", name, guest.DetachKeyName)
	detached, err := s.Console(ctx, name, g.Stdin, g.Stdout, vm.ConsoleOptions{})
	if err != nil {
		return err
	}
	if detached {
		fmt.Fprintf(g.Stderr, "\r\nbanger: detached from VM %s (it keeps running)\n", name)
	} else {
		fmt.Fprintf(g.Stderr, "\r\nbanger: VM %s stopped\n", name)
	}
	return nil
}
