package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/vm"
	"github.com/thaloco/banger/internal/vmfile"
)

type upOptions struct {
	file    string
	timeout time.Duration
	json    bool
}

func (o *upOptions) addFlags(f *pflag.FlagSet) {
	addVMFileFlag(f, &o.file, vmfile.DefaultName, "the VM file")
	f.DurationVar(&o.timeout, "timeout", vm.DefaultReadyTimeout, "how long to wait for each guest to be ready")
	f.BoolVar(&o.json, "json", false, "print what was done as JSON")
}

func newUpCommand(g *globalOptions) *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up [-f FILE]",
		Short: "Create and start the VMs of a VM file",
		Long: `Bring the VMs of a VM file up, one after the other in the file's order:
create the missing ones and start them, start the stopped ones, leave the
running ones alone; one line per VM says which. Running it again changes
nothing. Before changing anything, up checks the whole file, and the host
paths of the VMs it is to create: a mistake stops it, naming the file
and line.

A VM that exists keeps the settings it was created with: when the file
now says otherwise (cpus, memory, publish, …), up warns and names the
difference; "banger vm rm --force NAME" and "banger up" recreate it.

` + vmFileHelp,
		Example: `  banger up
  banger up -f dev.yaml --json`,
		Args: exactArgs(0, "no arguments (the VMs are the file's)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), g, &o, args)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// upVMView is what up did to one VM, for --json.
type upVMView struct {
	Name        string   `json:"name"`
	Created     bool     `json:"created"`
	Started     bool     `json:"started"`
	Status      string   `json:"status,omitempty"`
	ReadyMS     int64    `json:"ready_ms,omitempty"`
	Differences []string `json:"differences,omitempty"`
	Error       string   `json:"error,omitempty"`
}

type upView struct {
	File string     `json:"file"`
	VMs  []upVMView `json:"vms"`
}

// upStep is one VM of the file: as it exists, or how to create it.
type upStep struct {
	v      *vmfile.VM
	cur    *vm.VM
	create vm.CreateOptions
}

func runUp(ctx context.Context, g *globalOptions, o *upOptions, _ []string) error {
	file, err := loadVMFile(o.file, true)
	if err != nil {
		return err
	}
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	home := g.Getenv("HOME")
	// Check everything before changing anything.
	steps := make([]upStep, 0, len(file.VMs))
	var errs []error
	for _, v := range file.VMs {
		st := upStep{v: v}
		st.cur, err = s.Get(v.Name)
		if errors.Is(err, vm.ErrNotFound) {
			st.create, err = v.CreateOptions(home)
		}
		if err != nil {
			errs = append(errs, err)
		}
		steps = append(steps, st)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	view := upView{File: file.Path}
	changed := false
	for _, st := range steps {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		r, err := upOne(ctx, s, st, o.timeout, home)
		if err != nil {
			errs = append(errs, err)
			r.Error = withHint(err).Error()
		}
		changed = changed || r.Created || r.Started
		view.VMs = append(view.VMs, r)
		if len(r.Differences) > 0 {
			fmt.Fprintf(g.Stderr, "banger: %s: exists with %s (hint: \"banger vm rm --force %s\" and \"banger up\" recreate it, with a new disk)\n",
				r.Name, strings.Join(r.Differences, ", "), r.Name)
		}
		switch {
		case o.json:
		case err == nil:
			fmt.Fprintf(g.Stdout, "%s: %s\n", r.Name, upLine(r))
		case r.Created:
			fmt.Fprintf(g.Stdout, "%s: created, but its start failed (below); \"banger up\" tries again\n", r.Name)
		}
	}
	if o.json {
		if err := writeJSON(g.Stdout, view); err != nil {
			return err
		}
	} else if !changed && len(errs) == 0 {
		fmt.Fprintf(g.Stdout, "nothing to do: every VM of %s is running\n", file.Path)
	}
	return errors.Join(errs...)
}

// upOne brings one VM up.
func upOne(ctx context.Context, s *vm.Store, st upStep, timeout time.Duration, home string) (upVMView, error) {
	r := upVMView{Name: st.v.Name}
	if st.cur != nil {
		r.Differences = st.v.Differences(st.cur.Config, home)
		r.Status = string(st.cur.State.Status)
		if st.cur.State.Status == vm.StatusRunning || st.cur.State.Status == vm.StatusStarting {
			return r, nil
		}
	} else {
		if _, err := s.Create(ctx, st.create); err != nil {
			return r, st.v.CreateError(err)
		}
		r.Created, r.Status = true, string(vm.StatusCreated)
	}
	v, err := s.Start(ctx, st.v.Name, vm.StartOptions{Timeout: timeout})
	if v != nil {
		r.Status = string(v.State.Status)
	}
	if err != nil {
		return r, err
	}
	r.Started, r.ReadyMS = true, v.State.Boot.Ready.Milliseconds()
	return r, nil
}

// upLine says what up did to a VM.
func upLine(r upVMView) string {
	ready := ""
	if r.ReadyMS > 0 {
		ready = fmt.Sprintf(" (ready in %s)", seconds(time.Duration(r.ReadyMS)*time.Millisecond))
	}
	switch {
	case r.Created:
		return "created and started" + ready
	case r.Started:
		return "started" + ready
	}
	return "already running"
}
