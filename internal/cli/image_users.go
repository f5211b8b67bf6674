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
