package imagebuild

import (
	"fmt"
	"strings"

	"github.com/thaloco/banger/internal/guestinit"
)

// guestArch names a platform's architecture as the guest does
// (uname -m), which is what guestinit takes.
func guestArch(platformArch string) string {
	if platformArch == "amd64" {
		return "x86_64"
	}
	return platformArch
}

// restore installs what a VM restored from a snapshot runs to become its
// own machine (guestinit.RestoreCommand): the reseed program.
func (g *guest) restore(cfg GuestConfig) error {
	arch := cfg.Arch
	if arch == "" {
		arch = "x86_64"
	}
	files, err := guestinit.InstallFiles(arch)
	if err != nil {
		g.warn = append(g.warn, fmt.Sprintf("no reseed program for %s: VMs restored from a snapshot reseed their random number generator only if the image has perl or python3", arch))
		return nil
	}
	for _, f := range files {
		if err := g.write(strings.TrimPrefix(f.Path, "/"), string(f.Data), f.Mode); err != nil {
			return err
		}
	}
	return nil
}
