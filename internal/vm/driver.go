package vm

import (
	"fmt"

	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/firecracker"
	"github.com/thaloco/banger/internal/vmm/qemu"
)

// driver returns the vmm.Driver called name.
func driver(name string) (vmm.Driver, error) {
	switch name {
	case VMMQEMU:
		return &qemu.Driver{}, nil
	case VMMFirecracker:
		return &firecracker.Driver{}, nil
	}
	return nil, fmt.Errorf("unknown VMM %q (hint: use qemu or firecracker)", name)
}

// argvDriver is a driver that can show the command line it runs.
type argvDriver interface {
	Args(m vmm.Machine) ([]string, error)
}
