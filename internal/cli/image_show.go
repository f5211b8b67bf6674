package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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

// imageShowJSON is the manifest plus where the image is on disk.
type imageShowJSON struct {
	*image.Manifest
	RootfsPath string `json:"rootfs_path"`
	DiskUsage  int64  `json:"disk_usage"`
}

func runImageShow(_ context.Context, g *globalOptions, o *imageShowOptions, args []string) error {
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
		return writeJSON(w, imageShowJSON{Manifest: m, RootfsPath: m.RootfsPath(), DiskUsage: m.DiskUsage()})
	}
	kv := newTable(w, "Name:", m.Name)
	kv.Row("Kernel:", m.KernelRef)
	kv.Row("Source:", m.Source)
	if m.RegisteredFrom != "" {
		kv.Row("Registered from:", m.RegisteredFrom)
	}
	if m.ImageRef != "" {
		kv.Row("Image:", m.ImageRef)
		kv.Row("Digest:", m.ImageDigest)
		kv.Row("Platform:", m.Platform)
	}
	if m.OS != "" {
		kv.Row("OS:", m.OS)
	}
	if m.PackageHash != "" {
		installed := "none (all present)"
		if len(m.Installed) > 0 {
			installed = strings.Join(m.Installed, " ")
		}
		kv.Row("Installed packages:", installed)
		kv.Row("Package hash:", m.PackageHash)
	}
	for _, warn := range m.Warnings {
		kv.Row("Warning:", warn)
	}
	kv.Row("Rootfs:", m.RootfsPath())
	kv.Row("Rootfs size:", fmt.Sprintf("%s (%s on disk)", progress.FormatBytes(m.RootfsSize), progress.FormatBytes(m.DiskUsage())))
	kv.Row("Rootfs sha256:", m.RootfsSHA256)
	kv.Row("Created:", humanTime(m.CreatedAt))
	return kv.Flush()
}
