package cli

import (
	"fmt"
	"strings"

	"github.com/thaloco/banger/internal/vm"
)

// vmView is how list --json and show --json print a VM.
type vmView struct {
	Name       string        `json:"name"`
	Status     string        `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	Broken     string        `json:"broken,omitempty"`
	Image      string        `json:"image,omitempty"`
	Kernel     string        `json:"kernel,omitempty"`
	Rootfs     string        `json:"rootfs,omitempty"`
	VMM        string        `json:"vmm,omitempty"`
	Arch       string        `json:"arch,omitempty"`
	Accel      string        `json:"accel,omitempty"`
	CPUs       int           `json:"cpus,omitempty"`
	MemoryMiB  int           `json:"memory_mib,omitempty"`
	Disk       string        `json:"disk,omitempty"`
	DiskSize   int64         `json:"disk_size,omitempty"`
	DiskKind   string        `json:"disk_kind,omitempty"`
	Net        string        `json:"net,omitempty"`
	HostAccess string        `json:"host_access,omitempty"`
	SSH        string        `json:"ssh,omitempty"`
	GuestAddr  string        `json:"guest_addr,omitempty"`
	HostAddr   string        `json:"host_addr,omitempty"`
	Tap        string        `json:"tap,omitempty"`
	Forwards   []forwardView `json:"forwards,omitempty"`
	KernelArgs string        `json:"kernel_args,omitempty"`
	Ready      string        `json:"ready,omitempty"`
	PID        int           `json:"pid,omitempty"`
	Dir        string        `json:"dir,omitempty"`
	ConsoleLog string        `json:"console_log,omitempty"`
	CreatedAt  string        `json:"created_at,omitempty"`
	StartedAt  string        `json:"started_at,omitempty"`
	Boot       *bootView     `json:"boot,omitempty"`
	VMMArgv    []string      `json:"vmm_argv,omitempty"`
	// Snapshot is what the VM was created from; Path how its last start
	// came up ("boot" or "restore"); Identity what the clone identity
	// step reported after a restore.
	Snapshot       string `json:"snapshot,omitempty"`
	RestorePending bool   `json:"restore_pending,omitempty"`
	Path           string `json:"path,omitempty"`
	Identity       string `json:"identity,omitempty"`
	// The setup applied over SSH at each start.
	Mounts     []mountView  `json:"mounts,omitempty"`
	CopyIns    []copyInView `json:"copy_ins,omitempty"`
	Hostname   string       `json:"hostname,omitempty"`
	SSHKeys    int          `json:"ssh_keys,omitempty"`
	InitScript string       `json:"init_script,omitempty"` // "pending" or "done"
}

// bootView is the last boot's timings in milliseconds from VMM start.
type bootView struct {
	VMMMs    int64 `json:"vmm_ms"`
	KernelMs int64 `json:"kernel_ms"`
	InitMs   int64 `json:"init_ms"`
	ReadyMs  int64 `json:"ready_ms"`
}

// forwardView is a port forward from the host into the guest.
type forwardView struct {
	HostIP    string `json:"host_ip"`
	HostPort  int    `json:"host_port"`
	GuestPort int    `json:"guest_port"`
	Proto     string `json:"proto"`
}

// mountView is a host directory shared with the guest over 9p.
type mountView struct {
	HostDir  string `json:"host_dir"`
	GuestDir string `json:"guest_dir"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Tag      string `json:"tag"`
}

// copyInView is a host directory copied into a read-only drive.
type copyInView struct {
	HostDir  string `json:"host_dir"`
	GuestDir string `json:"guest_dir"`
	Drive    string `json:"drive"`
	Label    string `json:"label"`
}

func viewOf(l vm.Listing) vmView {
	if l.VM == nil {
		return vmView{Name: l.Name, Status: "broken", Broken: l.Broken}
	}
	v := l.VM
	c, st := v.Config, v.State
	out := vmView{
		Name: c.Name, Status: string(st.Status), Reason: st.Reason, Image: c.Image, Kernel: c.Kernel,
		Rootfs: c.Rootfs, VMM: c.VMM, Arch: c.GuestArch(), Accel: st.Accel, CPUs: c.CPUs, MemoryMiB: c.MemoryMiB,
		Disk: v.DiskPath(), DiskSize: c.DiskSize, DiskKind: c.DiskKind(), Net: c.Net, HostAccess: c.HostAccess, SSH: v.SSHAddr(), Tap: st.Tap,
		GuestAddr: st.GuestAddr, HostAddr: st.HostAddr, KernelArgs: c.KernelArgs,
		Ready: c.Ready, PID: st.PID, Dir: v.Dir, ConsoleLog: v.ConsoleLog(),
		CreatedAt: jsonTime(c.CreatedAt), StartedAt: jsonTime(st.StartedAt), VMMArgv: st.Argv,
		Snapshot: c.Snapshot, RestorePending: st.RestorePending, Path: st.Path, Identity: st.Identity,
		Hostname: c.Hostname, SSHKeys: len(c.SSHKeys),
	}
	for _, f := range c.Forwards {
		out.Forwards = append(out.Forwards, forwardView{HostIP: f.HostIP, HostPort: f.HostPort, GuestPort: f.GuestPort, Proto: f.Proto})
	}
	for _, m := range c.Mounts {
		out.Mounts = append(out.Mounts, mountView{HostDir: m.HostDir, GuestDir: m.GuestDir, ReadOnly: m.ReadOnly, Tag: m.Tag})
	}
	for _, ci := range c.CopyIns {
		out.CopyIns = append(out.CopyIns, copyInView{HostDir: ci.HostDir, GuestDir: ci.GuestDir, Drive: ci.Drive, Label: ci.Label})
	}
	if c.InitScript {
		out.InitScript = "pending"
		if st.InitScriptDone {
			out.InitScript = "done"
		}
	}
	if c.ReadyMarker != "" {
		out.Ready += ": " + c.ReadyMarker
	}
	if b := st.Boot; b != (vm.Timings{}) {
		out.Boot = &bootView{b.VMM.Milliseconds(), b.Kernel.Milliseconds(), b.Init.Milliseconds(), b.Ready.Milliseconds()}
	}
	return out
}

// describeNet is a VM's network in a few words.
func describeNet(v *vm.VM) string {
	switch v.Config.Net {
	case vm.NetUser:
		s := "user networking, host access " + v.Config.HostAccess
		if addr := v.SSHAddr(); addr != "" {
			s += ", ssh " + addr
		}
		if len(v.Config.Forwards) > 0 {
			var f []string
			for _, fw := range v.Config.Forwards {
				f = append(f, fw.String())
			}
			s += ", " + strings.Join(f, " ")
		}
		return s
	case vm.NetTap:
		if v.State.GuestAddr != "" {
			return fmt.Sprintf("tap %s, guest %s", v.State.Tap, v.State.GuestAddr)
		}
		return "tap networking"
	}
	return "no network"
}
