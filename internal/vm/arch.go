package vm

import (
	"fmt"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kernelstore"
)

// GuestArch is the guest architecture of c: VMs created before banger ran
// other guests than x86_64 record none.
func (c Config) GuestArch() string { return arch.Or(c.Arch, arch.X86_64) }

// planArch sets cfg.Arch: want (--arch, any spelling) if given, else the
// image's architecture, else the kernel's. A kernel or image of another
// architecture than the VM is refused, naming both.
func planArch(cfg *Config, want string, img *image.Manifest, k *kernelstore.Manifest) error {
	imgArch := ""
	if img != nil {
		imgArch = img.Architecture()
	}
	switch {
	case want != "":
		a, err := arch.Canonical(want)
		if err != nil {
			return fmt.Errorf("--arch: %w", err)
		}
		cfg.Arch = a
		if imgArch != "" && imgArch != a {
			return fmt.Errorf("image %q is %s but VM %q is %s (hint: build an image for it with --platform linux/%s, or leave out --arch)", img.Name, imgArch, cfg.Name, a, arch.GOARCH(a))
		}
	case imgArch != "":
		cfg.Arch = imgArch
		if k.Arch != imgArch {
			return fmt.Errorf("image %q is %s but kernel %q is %s (hint: pass --kernel with an %s kernel, see \"banger kernel list --arch %s\")", img.Name, imgArch, k.Name, k.Arch, imgArch, imgArch)
		}
	default:
		cfg.Arch = arch.Or(k.Arch, arch.X86_64)
	}
	return checkKernelArch(cfg.Name, cfg.Arch, k)
}

// checkKernelArch refuses to boot VM name (of architecture a) with kernel
// k of another architecture.
func checkKernelArch(name, a string, k *kernelstore.Manifest) error {
	if ka := arch.Or(k.Arch, arch.X86_64); ka != a {
		return fmt.Errorf("kernel %q is %s but VM %q is %s (hint: pass --kernel with an %s kernel, see \"banger kernel list --arch %s\")", k.Name, ka, name, a, a, a)
	}
	return nil
}
