package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/progress"
)

type imageListOptions struct{ json bool }

func newImageListCommand(g *globalOptions) *cobra.Command {
	var o imageListOptions
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List images",
		Example: `  banger image list
  banger image list --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageList(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func runImageList(ctx context.Context, g *globalOptions, o *imageListOptions, _ []string) error {
	w := g.Stdout
	store, err := g.imageStore()
	if err != nil {
		return err
	}
	ls, err := store.List()
	if err != nil {
		return err
	}
	if o.json {
		out := make([]imageView, 0, len(ls))
		for _, l := range ls {
			out = append(out, toImageView(l))
		}
		return writeJSON(w, out)
	}
	if len(ls) == 0 {
		return printEmpty(w, "images", `build one with "banger image build --from-image REF --name NAME", or add an ext4 file with "banger image register"`)
	}
	t := newTable(w, "NAME", "KERNEL", "SIZE", "DISK", "SOURCE", "CREATED")
	for _, l := range ls {
		if l.Broken != "" {
			t.Row(l.Name, "-", "-", "-", "broken", l.Broken)
			continue
		}
		m := l.Manifest
		t.Row(m.Name, m.KernelRef, progress.FormatBytes(m.RootfsSize), progress.FormatBytes(m.DiskUsage()), imageSource(m), humanTime(m.CreatedAt))
	}
	return t.Flush()
}

// imageSource says where an image came from in one short column.
func imageSource(m *image.Manifest) string {
	if m.Source == image.SourceBuild && m.ImageRef != "" {
		return "build " + m.ImageRef
	}
	return m.Source
}
