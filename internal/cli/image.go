package cli

import "github.com/spf13/cobra"

func newImageCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage root filesystem images: register, build from OCI images, list, remove",
	}
	return cmd
}
