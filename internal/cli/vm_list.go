package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

type vmListOptions struct{ json bool }

func newVMListCommand(g *globalOptions) *cobra.Command {
	var o vmListOptions
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List VMs with their status",
		Long: `List VMs. The status is checked against the real VMM processes: a VM
whose VMM died shows as stopped (the guest shut down) or crashed, with the
reason from its console log, and its stale pid and sockets are cleaned up.`,
		Example: `  banger vm list
  banger vm list --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMList(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func runVMList(ctx context.Context, g *globalOptions, o *vmListOptions, _ []string) error {
	w := g.Stdout
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	ls, err := s.List()
	if err != nil {
		return err
	}
	views := make([]vmView, 0, len(ls))
	for _, l := range ls {
		views = append(views, viewOf(l))
	}
	if o.json {
		return writeJSON(w, views)
	}
	if len(ls) == 0 {
		return printEmpty(w, "VMs", `create one with "banger vm create NAME --image IMAGE"`)
	}
	t := newTable(w, "NAME", "STATUS", "VMM", "IMAGE", "CPUS", "MEMORY", "NETWORK", "CREATED")
	var notes []string
	for i, l := range ls {
		v := views[i]
		if l.VM == nil {
			t.Row(v.Name, "broken", "-", "-", "-", "-", "-", "-")
			notes = append(notes, fmt.Sprintf("%s: %s", v.Name, v.Broken))
			continue
		}
		image := v.Image
		if image == "" {
			image = "(" + v.Kernel + " + rootfs)"
		}
		t.Row(v.Name, v.Status, v.VMM, image, strconv.Itoa(v.CPUs), fmt.Sprintf("%dM", v.MemoryMiB), describeNet(l.VM), humanTime(l.VM.Config.CreatedAt))
		if v.Reason != "" && (v.Status == "crashed" || v.Status == "stopped") {
			notes = append(notes, fmt.Sprintf("%s: %s: %s", v.Name, v.Status, v.Reason))
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return nil
}
