package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/vm"
	"github.com/thaloco/banger/internal/vmfile"
)

type downOptions struct {
	file    string
	force   bool
	timeout time.Duration
	json    bool
}

func (o *downOptions) addFlags(f *pflag.FlagSet) {
	addVMFileFlag(f, &o.file, vmfile.DefaultName, "the VM file")
	f.BoolVar(&o.force, "force", false, "kill the VMMs at once, without a graceful shutdown")
	f.DurationVar(&o.timeout, "timeout", vm.DefaultStopTimeout, "how long each guest may take to shut down before it is killed")
	f.BoolVar(&o.json, "json", false, "print what was done as JSON")
}

func newDownCommand(g *globalOptions) *cobra.Command {
	var o downOptions
	cmd := &cobra.Command{
		Use:   "down [-f FILE]",
		Short: "Stop and remove the VMs of a VM file",
		Long: `Stop the VMs a VM file names (gracefully, as "banger vm stop", unless
--force) and remove them with their disks, in the file's order; one line
per VM says which. VMs the file does not name are left alone; VMs it names
that do not exist are reported as not there, so running it again is
fine. Only the names in the file matter: its other keys are not checked
against the host.

` + vmFileHelp,
		Example: `  banger down
  banger down -f dev.yaml --force`,
		Args: exactArgs(0, "no arguments (the VMs are the file's)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDown(cmd.Context(), g, &o, args)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// downVMView is what down did to one VM, for --json.
type downVMView struct {
	Name    string `json:"name"`
	Found   bool   `json:"found"`
	Stopped bool   `json:"stopped"`
	Removed bool   `json:"removed"`
	Error   string `json:"error,omitempty"`
}

type downView struct {
	File string       `json:"file"`
	VMs  []downVMView `json:"vms"`
}

func runDown(ctx context.Context, g *globalOptions, o *downOptions, _ []string) error {
	file, err := loadVMFile(o.file, true)
	if err != nil {
		return err
	}
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	view := downView{File: file.Path}
	var errs []error
	found := false
	for _, name := range file.Names() {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		r, err := downOne(ctx, s, name, vm.StopOptions{Force: o.force, Timeout: o.timeout})
		if err != nil {
			errs = append(errs, err)
			r.Error = withHint(err).Error()
		}
		found = found || r.Found
		view.VMs = append(view.VMs, r)
		if !o.json && err == nil {
			fmt.Fprintf(g.Stdout, "%s: %s\n", name, downLine(r))
		}
	}
	if o.json {
		if err := writeJSON(g.Stdout, view); err != nil {
			return err
		}
	} else if !found && len(errs) == 0 {
		fmt.Fprintf(g.Stdout, "nothing to do: no VM of %s exists\n", file.Path)
	}
	return errors.Join(errs...)
}

// downOne stops and removes one VM; a broken one (its record unreadable)
// is removed as "vm rm --force" would.
func downOne(ctx context.Context, s *vm.Store, name string, o vm.StopOptions) (downVMView, error) {
	r := downVMView{Name: name, Found: true}
	was, err := s.Stop(ctx, name, o)
	var broken *vm.BrokenError
	switch {
	case errors.Is(err, vm.ErrNotFound):
		r.Found = false
		return r, nil
	case errors.As(err, &broken):
	case err != nil:
		return r, err
	}
	r.Stopped = was
	if err := s.Remove(ctx, name, broken != nil); err != nil {
		return r, err
	}
	r.Removed = true
	return r, nil
}

func downLine(r downVMView) string {
	switch {
	case !r.Found:
		return "not there"
	case r.Stopped:
		return "stopped and removed"
	}
	return "removed"
}
