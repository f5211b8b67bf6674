package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newImageBuildCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "build --from-image REF --name NAME",
		Short: "Build an image from an OCI or Docker image",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("image build: not implemented yet")
		},
	}
}
