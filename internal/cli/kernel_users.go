package cli

// imagesUsingKernel names the images whose kernel_ref is kernel.
// TODO(images): wired to the image store once it lands.
func (g *globalOptions) imagesUsingKernel(kernel string) ([]string, error) {
	return nil, nil
}
