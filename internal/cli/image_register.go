package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/progress"
)

type imageRegisterOptions struct {
	name      string
	rootfs    string
	kernelRef string
	force     bool
}

func (o *imageRegisterOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.name, "name", "", "name of the new image (required)")
	f.StringVar(&o.rootfs, "rootfs", "", "ext4 root filesystem image file to copy in (required)")
	f.StringVar(&o.kernelRef, "kernel-ref", "", "installed kernel the image boots with (required)")
	f.BoolVar(&o.force, "force", false, "replace an existing image of the same name")
}

func newImageRegisterCommand(g *globalOptions) *cobra.Command {
	var opts imageRegisterOptions
	cmd := &cobra.Command{
		Use:   "register --name NAME --rootfs FILE --kernel-ref KERNEL",
		Short: "Add an existing ext4 root filesystem as an image",
		Long: `Add an existing ext4 root filesystem as an image. The file must be an
ext4 (or ext2/ext3) filesystem image and the kernel must be installed. The
file is copied in: a reflink where the filesystem supports it, otherwise
only its data blocks, so sparse images stay sparse.`,
		Example: `  banger image register --name void --rootfs ./void.ext4 --kernel-ref void-6.12
  banger image register --name void --rootfs ./void-new.ext4 --kernel-ref void-6.12 --force`,
		Args: exactArgs(0, "no arguments (use --name, --rootfs and --kernel-ref)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageRegister(cmd.Context(), g, &opts, args)
		},
	}
	opts.addFlags(cmd.Flags())
	mustMarkRequired(cmd, "name", "rootfs", "kernel-ref")
	return cmd
}

func runImageRegister(ctx context.Context, g *globalOptions, opts *imageRegisterOptions, _ []string) error {
	w := g.Stdout
	store, err := g.imageStore()
	if err != nil {
		return err
	}
	m, err := store.Register(ctx, opts.name, opts.rootfs, image.RegisterOptions{
		KernelRef:   opts.kernelRef,
		Force:       opts.force,
		CheckKernel: g.checkKernel,
		OnWait:      func() { fmt.Fprintf(g.Stderr, "waiting for another banger using image %q...\n", opts.name) },
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "image %s registered: %s ext4 rootfs (%s on disk), kernel %s\n",
		m.Name, progress.FormatBytes(m.RootfsSize), progress.FormatBytes(m.DiskUsage()), m.KernelRef)
	return err
}
