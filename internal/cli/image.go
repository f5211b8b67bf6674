package cli

import (
	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/image"
)

func newImageCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage root filesystem images: build from OCI images, register, list, show, remove",
		Long: `An image is a bootable ext4 root filesystem paired with a kernel.
"banger image build" makes one from any OCI or Docker image (a registry,
an OCI layout directory or a docker save archive), adding what a banger
guest needs; "banger image register" adds an ext4 file you made yourself.`,
	}
	cmd.AddCommand(
		newImageBuildCommand(g),
		newImageRegisterCommand(g),
		newImageListCommand(g),
		newImageShowCommand(g),
		newImageRmCommand(g),
		newImageWarmCommand(g),
		newImageVerifyCommand(g),
	)
	return cmd
}

// imageStore opens the images directory named by the environment.
func (g *globalOptions) imageStore() (*image.Store, error) {
	l, err := g.layout()
	if err != nil {
		return nil, err
	}
	return image.NewWithOptions(l.ImagesDir(), image.Options{Overlays: g.imageOverlays}), nil
}

// checkKernel returns an error with the pull hint unless kernel is
// installed.
func (g *globalOptions) checkKernel(kernel string) error {
	ks, err := g.kernelStore()
	if err != nil {
		return err
	}
	_, err = ks.Get(kernel)
	return err
}

// kernelArch is the architecture of an installed kernel.
func (g *globalOptions) kernelArch(kernel string) (string, error) {
	ks, err := g.kernelStore()
	if err != nil {
		return "", err
	}
	m, err := ks.Get(kernel)
	if err != nil {
		return "", err
	}
	return m.Arch, nil
}
