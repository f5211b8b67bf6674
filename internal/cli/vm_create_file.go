package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/thaloco/banger/internal/vmfile"
)

// runVMCreateFile is vm create -f FILE [NAME]: the VM of a one-VM file
// (NAME renames it), or the VM called NAME of a file with vms:.
func runVMCreateFile(ctx context.Context, g *globalOptions, o *vmCreateOptions, args []string) error {
	path := o.file
	f, err := loadVMFile(path, false)
	if err != nil {
		return err
	}
	var v *vmfile.VM
	switch {
	case f.Single:
		v = f.VMs[0]
		if len(args) == 1 {
			v.Name = args[0]
		}
		if v.Name == "" {
			return &usageError{fmt.Errorf("the VM in %s has no name (hint: add name: NAME to the file, or give one: \"banger vm create NAME -f %s\")", path, path)}
		}
	case len(args) == 1:
		var ok bool
		if v, ok = f.Get(args[0]); !ok {
			return fmt.Errorf("%s has no VM %q (hint: it has %s)", path, args[0], strings.Join(f.Names(), ", "))
		}
	case len(f.VMs) == 1:
		v = f.VMs[0]
	default:
		return &usageError{fmt.Errorf("%s has %d VMs: name the one to create (hint: \"banger vm create %s -f %s\")", path, len(f.VMs), f.VMs[0].Name, path)}
	}
	copts, err := v.CreateOptions(g.Getenv("HOME"))
	if err != nil {
		return err
	}
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	created, err := s.Create(ctx, copts)
	if err != nil {
		return v.CreateError(err)
	}
	printCreated(g, created)
	return nil
}
