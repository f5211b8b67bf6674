package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/paths"
)

// globalOptions is what every command shares: its streams and environment.
// Nothing here is global state: tests build their own.
type globalOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// layout resolves the state directories from the environment and makes
// sure the state directory exists and is private, saying so when it had
// to take access away from other users.
func (g *globalOptions) layout() (paths.Layout, error) {
	l, err := paths.FromEnv(g.Getenv)
	if err != nil {
		return l, err
	}
	tightened, err := paths.EnsureState(l)
	if err != nil {
		return l, err
	}
	if tightened {
		fmt.Fprintf(g.Stderr, "banger: made the state directory %s private (mode 0700): it holds disks, snapshots of guest memory and keys\n", l.State)
	}
	return l, nil
}

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "banger",
		Short: "Run microVMs from verified kernel bundles and root filesystem images",
		Long: `banger runs Firecracker-style microVMs on a Linux host.

It pulls pre-built, hash-verified kernel bundles from a catalog, builds
ext4 root filesystems from OCI images, and boots them with Firecracker or
QEMU's microvm machine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w (see \"%s --help\")", err, c.CommandPath())}
	})
	root.AddCommand(
		newVersionCommand(g),
		newCompletionCommand(g),
		newKernelCommand(g),
		newImageCommand(g),
		newVMCommand(g),
		newUpCommand(g),
		newDownCommand(g),
		newSnapshotCommand(g),
		newNodeCommand(g),
		newInternalCommand(g),
	)
	finishTree(root)
	return root
}

// mustMarkRequired marks flags of cmd required (see requiredFlags); a
// name that is not a flag is a bug.
func mustMarkRequired(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		if err := cmd.MarkFlagRequired(n); err != nil {
			panic(err)
		}
	}
}

// exactArgs is cobra.ExactArgs with a usage error that points at --help.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("%s: expected %s, got %d argument(s) (see \"%s --help\")", c.CommandPath(), what, len(args), c.CommandPath())}
		}
		return nil
	}
}

// minArgs requires at least n arguments.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return &usageError{fmt.Errorf("%s: expected %s (see \"%s --help\")", c.CommandPath(), what, c.CommandPath())}
		}
		return nil
	}
}
