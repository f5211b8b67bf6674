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

// kernelShowJSON is the manifest plus where the kernel is on disk.
type kernelShowJSON struct {
	*kernelstore.Manifest
	Dir string `json:"dir"`
}

func runKernelShow(_ context.Context, g *globalOptions, o *kernelShowOptions, args []string) error {
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
		return writeJSON(w, kernelShowJSON{Manifest: m, Dir: m.Dir()})
	}
	kv := newTable(w, "Name:", m.Name)
	kv.Row("Distro:", m.Distro)
	kv.Row("Arch:", m.Arch)
	kv.Row("Kernel version:", m.KernelVersion)
	if m.Description != "" {
		kv.Row("Description:", m.Description)
	}
	kv.Row("Source:", m.Source)
	if m.URL != "" {
		kv.Row("URL:", m.URL)
		kv.Row("Tarball sha256:", m.TarballSHA256)
		kv.Row("Tarball size:", fmt.Sprintf("%s (%d bytes)", progress.FormatBytes(m.TarballSize), m.TarballSize))
	}
	kv.Row("Installed:", humanTime(m.InstalledAt))
	kv.Row("Directory:", m.Dir())
	if err := kv.Flush(); err != nil {
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
