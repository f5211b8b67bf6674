package vm

import (
	"fmt"
	"strconv"

	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/firecracker"
	"github.com/thaloco/banger/internal/vmm/qemu"
)

// Environment variables choosing the uid and gid jailed Firecrackers run
// as (numeric; neither may be 0). Unset, they are firecracker.DefaultUID
// and DefaultGID.
const (
	JailerUIDEnv = "BANGER_JAILER_UID"
	JailerGIDEnv = "BANGER_JAILER_GID"
)

// driver returns the vmm.Driver that runs v. Jailed Firecracker VMs get
// their jails under <state>/jail, on the same file system as their disks
// (the jailer hard-links each disk into its jail).
func (s *Store) driver(v *VM) (vmm.Driver, error) {
	switch v.Config.VMM {
	case VMMQEMU:
		return &qemu.Driver{Arch: v.Config.GuestArch()}, nil
	case VMMFirecracker:
		d := &firecracker.Driver{ConsoleRelay: s.opts.ConsoleRelay}
		if v.Config.Jailer {
			j, err := s.jailer()
			if err != nil {
				return nil, err
			}
			d.Jailer = j
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown VMM %q (hint: use qemu or firecracker)", v.Config.VMM)
}

// jailer is the jailer of s's VMs: jails under <state>/jail, Firecracker
// run as $BANGER_JAILER_UID:$BANGER_JAILER_GID.
func (s *Store) jailer() (*firecracker.Jailer, error) {
	j := &firecracker.Jailer{ChrootBaseDir: s.Layout.JailDir(), UID: firecracker.DefaultUID, GID: firecracker.DefaultGID}
	hint := fmt.Sprintf("hint: set %s and %s to an unused uid and gid, or unset them for %d:%d",
		JailerUIDEnv, JailerGIDEnv, firecracker.DefaultUID, firecracker.DefaultGID)
	for _, e := range []struct {
		name string
		id   *int
	}{{JailerUIDEnv, &j.UID}, {JailerGIDEnv, &j.GID}} {
		v := s.getenv(e.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s=%q is not a numeric id (%s)", e.name, v, hint)
		}
		*e.id = int(n)
	}
	if err := firecracker.CheckIDs(j.UID, j.GID); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, hint)
	}
	return j, nil
}

// jailDir is the jailer's directory of v, "" when v is not jailed. It
// does not depend on the jailer's ids, so a VM is removed with its jail
// whatever the environment says.
func (s *Store) jailDir(v *VM) string {
	if v.Config.VMM != VMMFirecracker || !v.Config.Jailer {
		return ""
	}
	d := &firecracker.Driver{Jailer: &firecracker.Jailer{ChrootBaseDir: s.Layout.JailDir()}}
	return d.JailDir(vmm.Machine{Name: v.Name()})
}

// argvDriver is a driver that can show the command line it runs.
type argvDriver interface {
	Args(m vmm.Machine) ([]string, error)
}
