package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/progress"
	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/vm"
)

func newSnapshotCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "List, show and remove VM snapshots",
		Long: `A snapshot is a paused guest saved to disk: its memory and device state and a
copy of its disk, under <state>/snapshots/<name>/ (private: it holds the
guest's memory). Take one with "banger vm snapshot VM NAME"; start copies
of it with "banger vm create NEW --snapshot NAME" or
"banger vm run --snapshot NAME".`,
	}
	cmd.AddCommand(newSnapshotListCommand(g), newSnapshotShowCommand(g), newSnapshotRmCommand(g))
	return cmd
}

// snapshotView is how snapshot list --json and show --json print one.
type snapshotView struct {
	Name         string `json:"name"`
	Broken       string `json:"broken,omitempty"`
	SourceVM     string `json:"source_vm,omitempty"`
	Image        string `json:"image,omitempty"`
	WarmFor      string `json:"warm_for,omitempty"`
	Kernel       string `json:"kernel,omitempty"`
	KernelSHA256 string `json:"kernel_sha256,omitempty"`
	VMM          string `json:"vmm,omitempty"`
	VMMVersion   string `json:"vmm_version,omitempty"`
	Accel        string `json:"accel,omitempty"`
	CPUs         int    `json:"cpus,omitempty"`
	MemoryMiB    int    `json:"memory_mib,omitempty"`
	Net          string `json:"net,omitempty"`
	HostAccess   string `json:"host_access,omitempty"`
	DiskSize     int64  `json:"disk_size,omitempty"` // what the guest sees
	DiskKind     string `json:"disk_kind,omitempty"`
	StateSize    int64  `json:"state_size,omitempty"`
	StateUsage   int64  `json:"state_disk_usage,omitempty"`
	DiskUsage    int64  `json:"disk_usage,omitempty"`
	SaveMs       int64  `json:"save_ms,omitempty"`
	Dir          string `json:"dir,omitempty"`
	CreatedAt    string `json:"created_at,omitempty"`
}

func toSnapshotView(l snapshot.Listing) snapshotView {
	if l.Broken != "" {
		return snapshotView{Name: l.Name, Broken: l.Broken}
	}
	m := l.Manifest
	var state, stateUsage int64
	for _, f := range m.StateFiles {
		state += f.Size
		stateUsage += f.DiskUsage
	}
	return snapshotView{
		Name: m.Name, SourceVM: m.SourceVM, Image: m.Image, WarmFor: m.WarmFor, Kernel: m.Kernel, KernelSHA256: m.KernelSHA256,
		VMM: m.VMM, VMMVersion: m.VMMVersion, Accel: m.Accel, CPUs: m.CPUs, MemoryMiB: m.MemoryMiB, Net: m.Net, HostAccess: m.HostAccess,
		DiskSize: m.GuestDiskSize(), DiskKind: m.DiskKind(), StateSize: state, StateUsage: stateUsage, DiskUsage: m.DiskUsage(), SaveMs: m.SaveTime.Milliseconds(),
		Dir: m.Dir(), CreatedAt: jsonTime(m.CreatedAt),
	}
}

type snapshotListOptions struct{ json bool }

func newSnapshotListCommand(g *globalOptions) *cobra.Command {
	var o snapshotListOptions
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List snapshots",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSnapshotList(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func runSnapshotList(ctx context.Context, g *globalOptions, o *snapshotListOptions, _ []string) error {
	l, err := g.layout()
	if err != nil {
		return err
	}
	ls, err := snapshot.New(l).List()
	if err != nil {
		return err
	}
	if o.json {
		out := make([]snapshotView, 0, len(ls))
		for _, s := range ls {
			out = append(out, toSnapshotView(s))
		}
		return writeJSON(g.Stdout, out)
	}
	if len(ls) == 0 {
		return printEmpty(g.Stdout, "snapshots", `take one with "banger vm snapshot VM NAME" or "banger image warm IMAGE"`)
	}
	t := newTable(g.Stdout, "NAME", "SOURCE", "IMAGE", "VMM", "CPUS", "MEMORY", "NET", "DISK", "CREATED")
	for _, s := range ls {
		if s.Broken != "" {
			t.Row(s.Name, "-", "-", "-", "-", "-", "-", "-", "broken: "+s.Broken)
			continue
		}
		m := s.Manifest
		img := m.Image
		if img == "" {
			img = "-"
		}
		if m.WarmFor != "" {
			img += " (warm)"
		}
		t.Row(m.Name, m.SourceVM, img, m.VMM, fmt.Sprint(m.CPUs), fmt.Sprintf("%dM", m.MemoryMiB), m.Net,
			progress.FormatBytes(m.DiskUsage()), humanTime(m.CreatedAt))
	}
	return t.Flush()
}

type snapshotShowOptions struct{ json bool }

func newSnapshotShowCommand(g *globalOptions) *cobra.Command {
	var o snapshotShowOptions
	cmd := &cobra.Command{
		Use:   "show SNAPSHOT",
		Short: "Show a snapshot's manifest",
		Args:  exactArgs(1, "a snapshot name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSnapshotShow(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func runSnapshotShow(ctx context.Context, g *globalOptions, o *snapshotShowOptions, args []string) error {
	l, err := g.layout()
	if err != nil {
		return err
	}
	m, err := snapshot.New(l).Get(args[0])
	if err != nil {
		return err
	}
	v := toSnapshotView(snapshot.Listing{Name: m.Name, Manifest: m})
	if o.json {
		return writeJSON(g.Stdout, v)
	}
	f := newFields(g.Stdout)
	row := f.Add
	row("name", v.Name)
	row("source vm", v.SourceVM)
	row("image", v.Image)
	row("warm for", v.WarmFor)
	row("kernel", fmt.Sprintf("%s (vmlinux sha256 %s)", v.Kernel, v.KernelSHA256))
	row("vmm", fmt.Sprintf("%s (%s, %s)", v.VMM, v.VMMVersion, v.Accel))
	row("cpus", fmt.Sprint(v.CPUs))
	row("memory", fmt.Sprintf("%dM", v.MemoryMiB))
	row("net", v.Net)
	row("host access", v.HostAccess)
	row("disk", progress.FormatBytes(v.DiskSize)+", "+v.DiskKind)
	row("state", progress.FormatBytes(v.StateSize))
	row("disk usage", progress.FormatBytes(v.DiskUsage))
	row("paused for", fmt.Sprintf("%d ms", v.SaveMs))
	row("dir", v.Dir)
	f.AddTime("created", m.CreatedAt)
	return f.Flush()
}

type snapshotRmOptions struct{ force bool }

func newSnapshotRmCommand(g *globalOptions) *cobra.Command {
	var o snapshotRmOptions
	cmd := &cobra.Command{
		Use:     "rm SNAPSHOT...",
		Aliases: []string{"remove"},
		Short:   "Remove snapshots",
		Long: `Remove snapshots. A snapshot that a VM still needs (one created with
--snapshot that has not been started yet) is kept unless --force.`,
		Args: minArgs(1, "at least one snapshot name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSnapshotRm(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "remove even if a VM still needs it")
	return cmd
}

func runSnapshotRm(ctx context.Context, g *globalOptions, o *snapshotRmOptions, args []string) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	snaps := snapshot.New(s.Layout)
	return removeEach(ctx, g.Stdout, "snapshot", args, o.force, func(ctx context.Context, name string, force bool) error {
		return snaps.Remove(ctx, name, force, s.SnapshotUsers)
	})
}

type vmSnapshotOptions struct{ stop bool }

func newVMSnapshotCommand(g *globalOptions) *cobra.Command {
	var o vmSnapshotOptions
	cmd := &cobra.Command{
		Use:   "snapshot VM SNAPSHOT",
		Short: "Save a running VM as a snapshot",
		Long: `Pause the running VM, save its memory and device state and a copy of its
disk (taken while paused, so both agree) as SNAPSHOT, then resume it, or
stop it with --stop. Start copies of it with
"banger vm create NEW --snapshot SNAPSHOT".`,
		Example: `  banger vm snapshot web web-ready
  banger vm run --rm --snapshot web-ready -- hostname`,
		Args: exactArgs(2, "a VM name and a snapshot name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMSnapshot(cmd.Context(), g, &o, args)
		},
	}
	cmd.Flags().BoolVar(&o.stop, "stop", false, "stop the VM after the snapshot")
	return cmd
}

func runVMSnapshot(ctx context.Context, g *globalOptions, o *vmSnapshotOptions, args []string) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	m, err := s.Snapshot(ctx, args[0], args[1], vm.SnapshotOptions{Stop: o.stop})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "snapshot %s taken of VM %s (%s on disk, paused %d ms)\n", m.Name, args[0], progress.FormatBytes(m.DiskUsage()), m.SaveTime.Milliseconds())
	return nil
}
