package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/vm"
)

func newVMCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Create, run and manage microVMs",
		Long: `A VM boots an image's kernel and its own writable copy of the image's
root filesystem with Firecracker or QEMU (microvm). Its state lives in
<state>/vms/<name>/; the VMM keeps running after banger exits.`,
	}
	cmd.AddCommand(
		newVMCreateCommand(g),
		newVMStartCommand(g),
		newVMStopCommand(g),
		newVMRestartCommand(g),
		newVMRmCommand(g),
		newVMRunCommand(g),
		newVMListCommand(g),
		newVMShowCommand(g),
		newVMLogsCommand(g),
		newVMConsoleCommand(g),
		newVMSSHCommand(g),
		newVMCpCommand(g),
		newVMSnapshotCommand(g),
	)
	return cmd
}

// vmStore opens the VM store named by the environment; its warnings and
// notes go to stderr.
func (g *globalOptions) vmStore() (*vm.Store, error) {
	l, err := g.layout()
	if err != nil {
		return nil, err
	}
	return vm.NewWithOptions(l, vm.Options{
		Getenv: g.Getenv,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(g.Stderr, "banger: "+format+"\n", args...)
		},
		ConsoleRelay: consoleRelayCommand(),
	}), nil
}

// completeVMNames completes the names of existing VMs.
func completeVMNames(g *globalOptions) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		s, err := g.vmStore()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ls, _ := s.List()
		names := make([]string, 0, len(ls))
		for _, l := range ls {
			names = append(names, l.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
