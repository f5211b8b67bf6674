package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/guest"
)

type vmSSHOptions struct{ wait time.Duration }

func newVMSSHCommand(g *globalOptions) *cobra.Command {
	var o vmSSHOptions
	cmd := &cobra.Command{
		Use:   "ssh NAME [-- COMMAND...]",
		Short: "Open a shell in a running VM, or run a command there, over SSH",
		Long: `Connect to a running VM's SSH server as root with banger's own key.
Without a command, open an interactive shell. With one, run it, stream
its output, and exit with its exit status. A single COMMAND word is run
by the guest's shell as is (pipes and all); several words are quoted one
by one. The guest's host key is pinned on first use.`,
		Example: `  banger vm ssh web
  banger vm ssh web -- uname -a
  banger vm ssh web -- 'dmesg | tail'`,
		Args:              minArgs(1, "a VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMSSH(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for the guest's SSH server to answer")
	return cmd
}

func runVMSSH(ctx context.Context, g *globalOptions, o *vmSSHOptions, args []string) error {
	name, command := args[0], args[1:]
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	target, err := s.SSH(name)
	if err != nil {
		return err
	}
	return sshExec(ctx, g, target, command, o.wait)
}

// sshExec runs command (or a shell) in the guest and turns a non-zero
// exit status into an ExitError.
func sshExec(ctx context.Context, g *globalOptions, target *guest.SSH, command []string, wait time.Duration) error {
	c, err := target.Connect(ctx, wait)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	var code int
	if len(command) == 0 {
		code, err = guest.Shell(ctx, c, g.Stdin, g.Stdout, g.Stderr)
	} else {
		code, err = guest.Run(ctx, c, guest.CommandLine(command), g.Stdin, g.Stdout, g.Stderr)
	}
	return exitCode(code, err)
}

// exitCode turns a guest command's exit status into banger's.
func exitCode(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}
