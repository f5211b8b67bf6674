package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/progress"
)

type kernelPullOptions struct {
	arch  string
	as    string
	force bool
}

func (o *kernelPullOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.arch, "arch", "", "architecture to pull: x86_64 or arm64 (default: this host's)")
	f.StringVar(&o.as, "as", "", "install under this name instead of the catalog's (e.g. to keep both arches of one kernel)")
	f.BoolVar(&o.force, "force", false, "download and reinstall even if the same bundle is installed")
}

func newKernelPullCommand(g *globalOptions) *cobra.Command {
	var opts kernelPullOptions
	cmd := &cobra.Command{
		Use:   "pull NAME",
		Short: "Download, verify and install a kernel from the catalog",
		Example: `  banger kernel pull generic-6.12
  banger kernel pull generic-6.12 --arch arm64 --as generic-6.12-arm64
  BANGER_KERNEL_MIRROR=file:///srv/kernels banger kernel pull generic-6.12`,
		Args: exactArgs(1, "a kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelPull(cmd.Context(), g, &opts, args)
		},
	}
	opts.addFlags(cmd.Flags())
	return cmd
}

func runKernelPull(ctx context.Context, g *globalOptions, opts *kernelPullOptions, args []string) error {
	name, w := args[0], g.Stdout
	if err := paths.ValidateName("kernel", name); err != nil {
		return err
	}
	cat, err := g.catalog()
	if err != nil {
		return err
	}
	a, err := archFlag(opts.arch)
	if err != nil {
		return err
	}
	entry, err := cat.Lookup(name, a)
	if err != nil {
		return err
	}
	store, err := g.kernelStore()
	if err != nil {
		return err
	}
	res, err := store.Pull(ctx, entry, kernelstore.PullOptions{
		Force: opts.force,
		As:    opts.as,
		Progress: func(total int64) (io.Writer, func(error)) {
			bar := progress.New(g.Stderr, fmt.Sprintf("pulling %s (%s)", entry.Name, entry.Arch), total)
			return bar, bar.Finish
		},
		Logf: func(format string, args ...any) { fmt.Fprintf(g.Stderr, "banger: "+format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	m := res.Manifest
	if res.AlreadyInstalled {
		_, err = fmt.Fprintf(w, "kernel %s (%s, %s) is already installed with sha256 %s; nothing to do\n", m.Name, m.KernelVersion, m.Arch, m.TarballSHA256)
		return err
	}
	verb := "installed"
	if res.Replaced {
		verb = "updated"
	}
	_, err = fmt.Fprintf(w, "kernel %s %s: %s, %s, %s in %s\n", m.Name, verb, m.KernelVersion, m.Arch, progress.FormatBytes(m.Size()), m.Dir())
	return err
}
