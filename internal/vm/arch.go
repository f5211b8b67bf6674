package vm

import (
	"fmt"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/option"
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
			return &option.Error{Option: "arch", Err: err}
		}
		cfg.Arch = a
		if imgArch != "" && imgArch != a {
			return &ArchError{Kind: "image", Name: img.Name, Arch: imgArch, OtherKind: "VM", OtherName: cfg.Name, OtherArch: a}
		}
	case imgArch != "":
		cfg.Arch = imgArch
		if k.Arch != imgArch {
			return &ArchError{Kind: "image", Name: img.Name, Arch: imgArch, OtherKind: "kernel", OtherName: k.Name, OtherArch: k.Arch}
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
		return &ArchError{Kind: "kernel", Name: k.Name, Arch: ka, OtherKind: "VM", OtherName: name, OtherArch: a}
	}
	return nil
}

// ArchError says the Kind ("image", "kernel") called Name is built for
// Arch, but the OtherKind ("VM", "kernel") it goes with is OtherArch.
type ArchError struct {
	Kind, Name, Arch                string
	OtherKind, OtherName, OtherArch string
}

func (e *ArchError) Error() string {
	if e.OtherKind == "VM" { // the callers' errors name the VM
		return fmt.Sprintf("%s %q is %s but the VM is %s", e.Kind, e.Name, e.Arch, e.OtherArch)
	}
	return fmt.Sprintf("%s %q is %s but %s %q is %s", e.Kind, e.Name, e.Arch, e.OtherKind, e.OtherName, e.OtherArch)
}
