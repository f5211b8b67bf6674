package cli

import "slices"

// kernelUsers names the images whose kernel_ref is kernel and the VMs that
// boot it; "banger kernel rm" keeps a kernel they use unless --force.
func (g *globalOptions) kernelUsers(kernel string) ([]string, error) {
	images, err := g.imageStore()
	if err != nil {
		return nil, err
	}
	imgs, err := images.KernelUsers(kernel)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, n := range imgs {
		users = append(users, "image "+n)
	}
	vms, err := g.vmStore()
	if err != nil {
		return nil, err
	}
	v, err := vms.KernelUsers(kernel)
	if err != nil {
		return nil, err
	}
	for _, n := range v {
		users = append(users, "VM "+n)
	}
	slices.Sort(users)
	return users, nil
}
