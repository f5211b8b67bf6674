package cli

// vmsUsingImage names the VMs created from image name; "banger image rm"
// refuses to remove an image while this is non-empty (unless --force).
// TODO(vms): wire to vm.Store.ImageUsers once the VM store lands.
func (g *globalOptions) vmsUsingImage(name string) ([]string, error) {
	return nil, nil
}
