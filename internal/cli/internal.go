package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/vmm/consolerelay"
)

// newInternalCommand holds the commands banger runs itself, in processes
// of their own; they are hidden from help and completion.
func newInternalCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "internal",
		Short:  "Commands banger runs itself",
		Hidden: true,
	}
	cmd.AddCommand(newInternalConsoleRelayCommand(g))
	return cmd
}

// internalConsoleRelayOptions: console-relay has no flags.
type internalConsoleRelayOptions struct{}

func newInternalConsoleRelayCommand(g *globalOptions) *cobra.Command {
	var o internalConsoleRelayOptions
	return &cobra.Command{
		Use:   "console-relay LOG",
		Short: "Serve a Firecracker VM's console (started by banger with the descriptors it needs)",
		Args:  exactArgs(1, "the console log path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInternalConsoleRelay(cmd.Context(), g, &o, args)
		},
	}
}

func runInternalConsoleRelay(ctx context.Context, g *globalOptions, _ *internalConsoleRelayOptions, args []string) error {
	return consolerelay.Main(ctx, args[0])
}

// consoleRelayCommand is how banger runs its console relay: this very
// program, as it was invoked when that resolves to the running executable
// (so a multi-call binary sees the name it dispatches on), else by its
// absolute path.
func consoleRelayCommand() []string {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	if p, err := exec.LookPath(os.Args[0]); err == nil && sameFile(p, self) {
		if abs, err := filepath.Abs(p); err == nil {
			self = abs
		}
	}
	return []string{self, "internal", "console-relay"}
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
