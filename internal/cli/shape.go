package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// exitStatusKey is the annotation holding a command's exit statuses,
// printed at the end of its help; a command sets it to say more than the
// common ones.
const exitStatusKey = "exit-status"

// finishTree applies what every command shares, once the tree is built:
// command groups refuse an unknown subcommand as a usage error naming it
// (with a suggestion), a missing required flag is a usage error too, and
// every command's help ends with its exit statuses.
func finishTree(root *cobra.Command) {
	root.SetUsageTemplate(root.UsageTemplate() + `{{with index .Annotations "` + exitStatusKey + `"}}
{{.}}
{{end}}`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.SuggestionsMinimumDistance = 2
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = unknownSubcommand
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		if c.PreRunE == nil {
			c.PreRunE = requiredFlags
		}
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		if c.Annotations[exitStatusKey] == "" {
			c.Annotations[exitStatusKey] = exitStatuses(c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownSubcommand accepts no arguments for a command group: the first
// one names a subcommand that does not exist.
func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageError{errors.New(msg + fmt.Sprintf(" (see \"%s --help\")", c.CommandPath()))}
}

// requiredFlags runs cobra's check of the flags marked required before
// cobra does, to make a missing one a usage error that points at --help.
func requiredFlags(c *cobra.Command, _ []string) error {
	if err := c.ValidateRequiredFlags(); err != nil {
		return &usageError{fmt.Errorf("%s: %w (see \"%s --help\")", c.CommandPath(), err, c.CommandPath())}
	}
	return nil
}

// exitStatuses is the help's closing paragraph.
func exitStatuses(c *cobra.Command) string {
	switch c.CommandPath() {
	case "banger vm run", "banger vm ssh":
		return `Exit status: with a command, the command's own exit status in the guest;
otherwise 0 on success. 1 when banger fails, 2 on a usage error, 130 when
interrupted.`
	}
	return "Exit status: 0 on success, 1 on failure, 2 on a usage error, 130 when\ninterrupted."
}
