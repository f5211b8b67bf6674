package vm

import (
	"fmt"
	"path/filepath"

	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/firecracker"
	"github.com/thaloco/banger/internal/vmm/qemu"
)

// driver returns the vmm.Driver that runs v. Jailed Firecracker VMs get
// their jails under <state>/jail, on the same file system as their disks
// (the jailer hard-links each disk into its jail).
func (s *Store) driver(v *VM) (vmm.Driver, error) {
	switch v.Config.VMM {
	case VMMQEMU:
		return &qemu.Driver{}, nil
	case VMMFirecracker:
		d := &firecracker.Driver{ConsoleRelay: s.ConsoleRelay}
		if v.Config.Jailer {
			d.Jailer = &firecracker.Jailer{ChrootBaseDir: filepath.Join(s.Layout.State, "jail")}
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown VMM %q (hint: use qemu or firecracker)", v.Config.VMM)
}

// jailDir is the jailer's directory of v, "" when v is not jailed.
func (s *Store) jailDir(v *VM) string {
	d, err := s.driver(v)
	if fd, ok := d.(*firecracker.Driver); err == nil && ok {
		return fd.JailDir(vmm.Machine{Name: v.Name()})
	}
	return ""
}

// argvDriver is a driver that can show the command line it runs.
type argvDriver interface {
	Args(m vmm.Machine) ([]string, error)
}
