package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/imagebuild"
	"github.com/thaloco/banger/internal/progress"
	"github.com/thaloco/banger/internal/sshkey"
)

type imageBuildOptions struct {
	fromImage string
	name      string
	kernelRef string
	size      int64
	platform  string
	force     bool
}

func (o *imageBuildOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.fromImage, "from-image", "", "image to build from: a registry reference, oci:DIR[:TAG], docker-archive:FILE, or a path to either (required)")
	f.StringVar(&o.name, "name", "", "name of the new image (required)")
	f.StringVar(&o.kernelRef, "kernel-ref", imagebuild.DefaultKernel, "installed kernel the image boots with")
	f.Var(sizeValue{&o.size}, "size", "rootfs size, e.g. 4G (default: the content plus a quarter, at least 256 MiB, free; the file is sparse)")
	f.StringVar(&o.platform, "platform", "", "platform to pull from multi-platform images, OS/ARCH[/VARIANT] (default: linux/amd64 or linux/arm64 after the kernel's architecture)")
	f.BoolVar(&o.force, "force", false, "replace an existing image of the same name")
}

func newImageBuildCommand(g *globalOptions) *cobra.Command {
	var opts imageBuildOptions
	cmd := &cobra.Command{
		Use:   "build --from-image REF --name NAME",
		Short: "Build an image from an OCI or Docker image",
		Long: `Build an image from an OCI or Docker image: pull it, apply its layers
(whiteouts included), add what a banger guest needs, and write an ext4
root filesystem with mkfs.ext4 -d that keeps owners, modes, links and
xattrs.

REF is a registry reference (localhost and 127.0.0.1 registries are
reached over plain HTTP), oci:DIR[:TAG] for an OCI image layout
directory, docker-archive:FILE for a "docker save" or
"podman save --format docker-archive" tarball, or a path to either.

Debian and Ubuntu images get the base packages they lack (systemd,
openssh-server, iproute2, ...) installed with their own apt, as root in a
chroot; other images are built as they are, with a warning listing what
they lack. Every image gets its hostname, an fstab for /dev/vda, a root
login on the serial console, banger's SSH key for root, DHCP networking
and sshd. The tree is cached by package hash, so building the same image
again takes seconds.`,
		Example: `  banger image build --from-image debian:bookworm --name deb
  banger image build --from-image localhost:5000/tools:latest --name tools --size 8G
  banger image build --from-image docker-archive:golden.tar --name golden --kernel-ref generic-6.12
  banger image build --from-image oci:./layout:v1 --name app --platform linux/arm64 --force`,
		Args: exactArgs(0, "no arguments (use --from-image and --name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageBuild(cmd.Context(), g, &opts, args)
		},
	}
	opts.addFlags(cmd.Flags())
	mustMarkRequired(cmd, "from-image", "name")
	return cmd
}

func runImageBuild(ctx context.Context, g *globalOptions, opts *imageBuildOptions, _ []string) error {
	w := g.Stdout
	size := opts.size
	l, err := g.layout()
	if err != nil {
		return err
	}
	store, err := g.imageStore()
	if err != nil {
		return err
	}
	key, err := sshkey.Ensure(l.SSHDir())
	if err != nil {
		return err
	}
	m, err := imagebuild.Build(ctx, store, imagebuild.Options{
		Ref: opts.fromImage, Name: opts.name, KernelRef: opts.kernelRef, Size: size,
		Platform: opts.platform, Force: opts.force,
		CacheDir:      l.ImageBuildCacheDir(),
		AuthorizedKey: key.Public,
		CheckKernel:   g.checkKernel,
		KernelArch:    g.kernelArch,
		Log:           g.Stderr,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "image %s built from %s (%s): %s ext4 rootfs (%s on disk), kernel %s\n",
		m.Name, m.ImageRef, m.ImageDigest, progress.FormatBytes(m.RootfsSize), progress.FormatBytes(m.DiskUsage()), m.KernelRef)
	return err
}
