package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/progress"
	"github.com/thaloco/banger/internal/vm"
)

func newVMShowCommand(g *globalOptions) *cobra.Command {
	var o vmShowOptions
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a VM: config, status, network, boot timings, VMM command line",
		Long: `Show a VM. The boot timings are those of its last boot, measured from
the VMM's start: the VMM answering, the kernel's first console output,
the kernel starting init, and the guest being ready. The VMM command line
is the one banger ran (for QEMU, runnable by hand).`,
		Example: `  banger vm show web
  banger vm show web --json | jq -r '.vmm_argv | @sh'`,
		Args:              exactArgs(1, "a VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMShow(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

// vmShowOptions are vm show's flags.
type vmShowOptions struct{ json bool }

func runVMShow(ctx context.Context, g *globalOptions, o *vmShowOptions, args []string) error {
	name, w := args[0], g.Stdout
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	v, err := s.Get(name)
	if err != nil {
		return err
	}
	view := viewOf(vm.Listing{Name: name, VM: v})
	if o.json {
		return writeJSON(w, view)
	}
	f := newFields(w)
	row := f.Add
	row("name", view.Name)
	status := view.Status
	if view.Reason != "" {
		status += " (" + view.Reason + ")"
	}
	row("status", status)
	row("image", view.Image)
	row("kernel", view.Kernel)
	row("rootfs", view.Rootfs)
	row("vmm", strings.TrimSpace(view.VMM+" "+view.Accel))
	row("arch", view.Arch)
	row("cpus", fmt.Sprint(view.CPUs))
	row("memory", fmt.Sprintf("%dM", view.MemoryMiB))
	row("disk", fmt.Sprintf("%s (%s, %s)", view.Disk, progress.FormatBytes(view.DiskSize), view.DiskKind))
	row("network", describeNet(v))
	row("kernel args", view.KernelArgs)
	for _, m := range v.Config.Mounts {
		row("mount", m.String()+" (9p)")
	}
	for _, c := range v.Config.CopyIns {
		row("copy-in", c.String()+" (read-only drive "+c.Drive+")")
	}
	row("hostname", view.Hostname)
	if view.SSHKeys > 0 {
		row("ssh keys", fmt.Sprintf("%d added for root", view.SSHKeys))
	}
	if view.InitScript != "" {
		row("init script", view.InitScript)
	}
	row("ready", view.Ready)
	if view.Snapshot != "" {
		row("snapshot", view.Snapshot)
	}
	switch {
	case view.RestorePending:
		row("start path", "restore (pending: the next start restores the snapshot)")
	case view.Path == vm.PathRestore:
		row("start path", "restore: "+view.Identity)
	case view.Path != "":
		row("start path", view.Path)
	}
	if view.PID != 0 {
		row("pid", fmt.Sprint(view.PID))
	}
	f.AddTime("created", v.Config.CreatedAt)
	f.AddTime("started", v.State.StartedAt)
	if v.State.Boot != (vm.Timings{}) {
		row("boot", formatTimings(v.State.Boot))
	}
	row("console log", view.ConsoleLog)
	if len(view.VMMArgv) > 0 {
		row("vmm command", guest.QuoteArgs(view.VMMArgv))
	}
	return f.Flush()
}
