package cli

// imagesUsingKernel names the images whose kernel_ref is kernel; "banger
// kernel rm" keeps a kernel they use unless --force.
func (g *globalOptions) imagesUsingKernel(kernel string) ([]string, error) {
	images, err := g.imageStore()
	if err != nil {
		return nil, err
	}
	return images.KernelUsers(kernel)
}
