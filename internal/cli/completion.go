package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCommand(_ *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Example: `  banger completion bash > /etc/bash_completion.d/banger
  banger completion zsh > "${fpath[1]}/_banger"
  banger completion fish > ~/.config/fish/completions/banger.fish`,
		Args:      exactArgs(1, "a shell name (bash, zsh or fish)"),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return cmd.Root().GenBashCompletionV2(out, true)
			case "zsh":
				return cmd.Root().GenZshCompletion(out)
			case "fish":
				return cmd.Root().GenFishCompletion(out, true)
			}
			return &usageError{fmt.Errorf("unknown shell %q: choose bash, zsh or fish", args[0])}
		},
	}
}
