package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type imageVerifyOptions struct{ json bool }

func newImageVerifyCommand(g *globalOptions) *cobra.Command {
	var o imageVerifyOptions
	return newVerifyCommand("image", `  banger image verify
  banger image verify golden --json`, `Re-hash the root filesystem of the named images (all of them without a
name) and compare its size and sha256 with the image's manifest.`,
		&o.json, func(cmd *cobra.Command, args []string) error {
			return runImageVerify(cmd.Context(), g, &o, args)
		})
}

func runImageVerify(ctx context.Context, g *globalOptions, o *imageVerifyOptions, names []string) error {
	s, err := g.imageStore()
	if err != nil {
		return err
	}
	list := func() ([]string, error) { return listingNames(s.List()) }
	return verifyEach(ctx, g, o.json, "image", names, list, s.Verify)
}
