package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/progress"
)

type kernelShowOptions struct{ json bool }

func newKernelShowCommand(g *globalOptions) *cobra.Command {
	var o kernelShowOptions
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show an installed kernel's manifest: files, hashes, source",
		Example: `  banger kernel show generic-6.12
  banger kernel show generic-6.12 --json`,
		Args: exactArgs(1, "a kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelShow(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the manifest as JSON")
	return cmd
}

func runKernelShow(ctx context.Context, g *globalOptions, o *kernelShowOptions, args []string) error {
	name, w := args[0], g.Stdout
	store, err := g.kernelStore()
	if err != nil {
		return err
	}
	m, err := store.Get(name)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(w, toKernelView(kernelstore.Listing{Name: m.Name, Manifest: m}, true))
	}
	f := newFields(w)
	f.Add("name", m.Name)
	f.Add("distro", m.Distro)
	f.Add("arch", m.Arch)
	f.Add("kernel version", m.KernelVersion)
	f.Add("description", m.Description)
	f.Add("source", m.Source)
	f.Add("catalog name", m.CatalogName)
	f.Add("url", m.URL)
	if m.URL != "" {
		f.Add("tarball sha256", m.TarballSHA256)
		f.Add("tarball size", fmt.Sprintf("%s (%d bytes)", progress.FormatBytes(m.TarballSize), m.TarballSize))
	}
	f.AddTime("installed", m.InstalledAt)
	f.Add("dir", m.Dir())
	if err := f.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t := newTable(w, "PATH", "MODE", "SIZE", "SHA256")
	for _, f := range m.Files {
		size, sum := progress.FormatBytes(f.Size), f.SHA256
		if f.LinkTarget != "" {
			size, sum = "-", "-> "+f.LinkTarget
		} else if f.SHA256 == "" {
			size, sum = "-", "-"
		}
		t.Row(f.Path, f.Mode, size, sum)
	}
	return t.Flush()
}
