package cli

// vmsUsingImage names the VMs created from image name; "banger image rm"
// refuses to remove an image while this is non-empty (unless --force).
func (g *globalOptions) vmsUsingImage(name string) ([]string, error) {
	s, err := g.vmStore()
	if err != nil {
		return nil, err
	}
	return s.ImageUsers(name)
}

// imageOverlays names the VMs and snapshots whose disks overlay image
// name's rootfs; the image store refuses to remove or replace it while
// there are any, even with --force.
func (g *globalOptions) imageOverlays(name string) ([]string, error) {
	s, err := g.vmStore()
	if err != nil {
		return nil, err
	}
	return s.OverlayUsers(name)
}
