package cli

import (
	"errors"

	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/vm"

	"context"

	"github.com/spf13/cobra"
)

type imageRmOptions struct{ force bool }

func newImageRmCommand(g *globalOptions) *cobra.Command {
	var o imageRmOptions
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove images",
		Long: `Remove images. An image that a VM was created from is kept unless
--force is given. The build cache is not touched.`,
		Example: `  banger image rm golden
  banger image rm old-a old-b --force`,
		Args: minArgs(1, "at least one image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageRm(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "remove even if VMs use the image")
	return cmd
}

func runImageRm(ctx context.Context, g *globalOptions, o *imageRmOptions, names []string) error {
	store, err := g.imageStore()
	if err != nil {
		return err
	}
	l, err := g.layout()
	if err != nil {
		return err
	}
	snaps := snapshot.New(l)
	return removeEach(ctx, g.Stdout, "image", names, o.force, func(ctx context.Context, name string, force bool) error {
		if err := store.Remove(ctx, name, force, g.vmsUsingImage); err != nil {
			return err
		}
		// The image's warm snapshot goes with it.
		if err := snaps.Remove(ctx, vm.WarmSnapshotName(name), true, nil); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			return err
		}
		return nil
	})
}
