package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/progress"
)

type imageShowOptions struct{ json bool }

func newImageShowCommand(g *globalOptions) *cobra.Command {
	var o imageShowOptions
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show an image's manifest: kernel, rootfs hash, where it came from",
		Example: `  banger image show golden
  banger image show golden --json`,
		Args: exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageShow(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the manifest as JSON")
	return cmd
}

func runImageShow(ctx context.Context, g *globalOptions, o *imageShowOptions, args []string) error {
	name, w := args[0], g.Stdout
	store, err := g.imageStore()
	if err != nil {
		return err
	}
	m, err := store.Get(name)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(w, toImageView(image.Listing{Name: m.Name, Manifest: m}))
	}
	f := newFields(w)
	f.Add("name", m.Name)
	f.Add("kernel", m.KernelRef)
	f.Add("source", m.Source)
	f.Add("registered from", m.RegisteredFrom)
	if m.ImageRef != "" {
		f.Add("image", m.ImageRef)
		f.Add("digest", m.ImageDigest)
		f.Add("platform", m.Platform)
	}
	f.Add("os", m.OS)
	if m.PackageHash != "" {
		installed := "none (all present)"
		if len(m.Installed) > 0 {
			installed = strings.Join(m.Installed, " ")
		}
		f.Add("installed packages", installed)
		f.Add("package hash", m.PackageHash)
	}
	if c := m.Config; c != nil {
		if len(c.Entrypoint) > 0 {
			f.Add("entrypoint", guest.QuoteArgs(c.Entrypoint))
		}
		if len(c.Cmd) > 0 {
			f.Add("cmd", guest.QuoteArgs(c.Cmd))
		}
		for _, e := range c.Env {
			f.Add("env", e)
		}
		f.Add("working dir", c.WorkingDir)
		f.Add("user", c.User)
	}
	for _, warn := range m.Warnings {
		f.Add("warning", warn)
	}
	f.Add("rootfs", m.RootfsPath())
	f.Add("rootfs size", fmt.Sprintf("%s (%s on disk)", progress.FormatBytes(m.RootfsSize), progress.FormatBytes(m.DiskUsage())))
	f.Add("rootfs sha256", m.RootfsSHA256)
	f.AddTime("created", m.CreatedAt)
	return f.Flush()
}
