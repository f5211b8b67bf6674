package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/progress"
)

type kernelImportOptions struct {
	from          string
	distro        string
	arch          string
	kernelVersion string
	description   string
	force         bool
}

func (o *kernelImportOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.from, "from", "", "directory holding vmlinux and optionally initrd.img and modules/ (required)")
	f.StringVar(&o.distro, "distro", "", "distribution the kernel belongs to, e.g. generic (required)")
	f.StringVar(&o.arch, "arch", "", "architecture: x86_64 or arm64 (aarch64 and amd64 are accepted; required)")
	f.StringVar(&o.kernelVersion, "kernel-version", "", "kernel release (default: read from vmlinux)")
	f.StringVar(&o.description, "description", "", "one-line description")
	f.BoolVar(&o.force, "force", false, "replace an installed kernel of the same name")
}

func newKernelImportCommand(g *globalOptions) *cobra.Command {
	var opts kernelImportOptions
	cmd := &cobra.Command{
		Use:   "import NAME --from DIR --distro D --arch A",
		Short: "Install a kernel from a local directory",
		Example: `  banger kernel import generic-6.12 --from build/manual/generic-kernel --distro generic --arch x86_64
  banger kernel import my-6.12 --from ./out --distro custom --arch x86_64 --kernel-version 6.12.9 --description "my debug kernel"`,
		Args: exactArgs(1, "a kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelImport(cmd.Context(), g, &opts, args)
		},
	}
	opts.addFlags(cmd.Flags())
	mustMarkRequired(cmd, "from", "distro", "arch")
	return cmd
}

func runKernelImport(ctx context.Context, g *globalOptions, opts *kernelImportOptions, args []string) error {
	name, w := args[0], g.Stdout
	store, err := g.kernelStore()
	if err != nil {
		return err
	}
	m, err := store.Import(ctx, name, opts.from, kernelstore.ImportOptions{
		Distro: opts.distro, Arch: opts.arch, KernelVersion: opts.kernelVersion,
		Description: opts.description, Force: opts.force,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "kernel %s imported: %s, %s, %s in %s\n", m.Name, m.KernelVersion, m.Arch, progress.FormatBytes(m.Size()), m.Dir())
	return err
}
