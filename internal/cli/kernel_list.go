package cli

import (
	"context"
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

func runKernelList(ctx context.Context, g *globalOptions, opts *kernelListOptions, _ []string) error {
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
		out := make([]kernelView, 0, len(ls))
		for _, l := range ls {
			out = append(out, toKernelView(l, false))
		}
		return writeJSON(w, out)
	}
	if len(ls) == 0 {
		return printEmpty(w, "kernels", `pull one with "banger kernel pull NAME", see "banger kernel list --available", or import your own with "banger kernel import"`)
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
