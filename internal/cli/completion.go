package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// completionOptions: completion has no flags.
type completionOptions struct{}

func newCompletionCommand(g *globalOptions) *cobra.Command {
	var o completionOptions
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Example: `  banger completion bash > /etc/bash_completion.d/banger
  banger completion zsh > "${fpath[1]}/_banger"
  banger completion fish > ~/.config/fish/completions/banger.fish`,
		Args:      exactArgs(1, "a shell name (bash, zsh or fish)"),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompletion(cmd.Context(), g, &o, args)
		},
	}
}

// runCompletion prints the script for a command tree built afresh: the
// same tree the user runs.
func runCompletion(ctx context.Context, g *globalOptions, _ *completionOptions, args []string) error {
	root := newRootCommand(g)
	switch args[0] {
	case "bash":
		return root.GenBashCompletionV2(g.Stdout, true)
	case "zsh":
		return root.GenZshCompletion(g.Stdout)
	case "fish":
		return root.GenFishCompletion(g.Stdout, true)
	}
	return &usageError{fmt.Errorf("unknown shell %q: choose bash, zsh or fish", args[0])}
}
