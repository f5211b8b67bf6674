package cli

import (
	"context"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/progress"
)

type kernelListOptions struct {
	available bool
	json      bool
	arch      string // only this architecture ("" all); canonical once run
}

func (o *kernelListOptions) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.available, "available", false, "list the catalog instead, marking what is installed or outdated")
	f.BoolVar(&o.json, "json", false, "print as JSON")
	f.StringVar(&o.arch, "arch", "", "list only kernels for this architecture: x86_64 or arm64 (aarch64 and amd64 are accepted)")
}

func newKernelListCommand(g *globalOptions) *cobra.Command {
	var opts kernelListOptions
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List installed kernels, or the catalog with --available",
		Example: `  banger kernel list
  banger kernel list --available
  banger kernel list --available --arch arm64
  banger kernel list --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.arch != "" {
				a, err := arch.Canonical(opts.arch)
				if err != nil {
					return err
				}
				opts.arch = a
			}
			if opts.available {
				return runKernelListAvailable(cmd.Context(), g, &opts, args)
			}
			return runKernelList(cmd.Context(), g, &opts, args)
		},
	}
	opts.addFlags(cmd.Flags())
	return cmd
}

// kernelListJSON is one installed kernel in `kernel list --json`.
type kernelListJSON struct {
	Name          string `json:"name"`
	Distro        string `json:"distro,omitempty"`
	Arch          string `json:"arch,omitempty"`
	KernelVersion string `json:"kernel_version,omitempty"`
	Size          int64  `json:"size,omitempty"`
	Source        string `json:"source,omitempty"`
	InstalledAt   string `json:"installed_at,omitempty"`
	Broken        string `json:"broken,omitempty"`
}

func runKernelList(_ context.Context, g *globalOptions, opts *kernelListOptions, _ []string) error {
	w := g.Stdout
	store, err := g.kernelStore()
	if err != nil {
		return err
	}
	ls, err := store.List()
	if err != nil {
		return err
	}
	if opts.arch != "" {
		ls = slices.DeleteFunc(ls, func(l kernelstore.Listing) bool { return l.Broken == "" && l.Manifest.Arch != opts.arch })
	}
	if opts.json {
		out := make([]kernelListJSON, 0, len(ls))
		for _, l := range ls {
			out = append(out, toKernelListJSON(l))
		}
		return writeJSON(w, out)
	}
	if len(ls) == 0 {
		_, err := io.WriteString(w, "No kernels installed. Pull one with \"banger kernel pull NAME\" (see \"banger kernel list --available\") or import your own with \"banger kernel import\".\n")
		return err
	}
	t := newTable(w, "NAME", "DISTRO", "ARCH", "VERSION", "SIZE", "SOURCE", "INSTALLED")
	for _, l := range ls {
		if l.Broken != "" {
			t.Row(l.Name, "-", "-", "-", "-", "broken", l.Broken)
			continue
		}
		m := l.Manifest
		t.Row(m.Name, m.Distro, m.Arch, m.KernelVersion, progress.FormatBytes(m.Size()), m.Source, humanTime(m.InstalledAt))
	}
	return t.Flush()
}

func toKernelListJSON(l kernelstore.Listing) kernelListJSON {
	if l.Broken != "" {
		return kernelListJSON{Name: l.Name, Broken: l.Broken}
	}
	m := l.Manifest
	return kernelListJSON{
		Name: m.Name, Distro: m.Distro, Arch: m.Arch, KernelVersion: m.KernelVersion,
		Size: m.Size(), Source: m.Source, InstalledAt: m.InstalledAt.UTC().Format("2006-01-02T15:04:05Z"),
	}
}
