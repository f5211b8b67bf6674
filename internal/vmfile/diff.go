package vmfile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/thaloco/banger/internal/vm"
)

// Differences lists where c, the config of the existing VM that v names,
// differs from what the file says, each as "cpus 1 (the file says 2)".
// Only the keys the file gives are compared, and not cold, ssh_keys or
// init_script: they matter only at creation.
func (v *VM) Differences(c vm.Config, home string) []string {
	var d []string
	differ := func(key, have, want string) {
		if _, given := v.set[key]; given && have != want {
			d = append(d, fmt.Sprintf("%s %s (the file says %s)", key, orNone(have), orNone(want)))
		}
	}
	o := v.opts
	differ("image", c.Image, o.Image)
	differ("kernel", c.Kernel, o.Kernel)
	if p, err := v.file.hostPath(v.rootfs.s, home); err == nil {
		differ("rootfs", c.Rootfs, p)
	}
	differ("arch", c.GuestArch(), o.Arch)
	differ("snapshot", c.Snapshot, o.Snapshot)
	differ("cpus", strconv.Itoa(c.CPUs), strconv.Itoa(o.CPUs))
	differ("memory", fmt.Sprintf("%dM", c.MemoryMiB), fmt.Sprintf("%dM", o.MemoryMiB))
	differ("disk_size", size(c.DiskSize), size(o.DiskSize))
	if o.VMM != "auto" {
		differ("vmm", c.VMM, o.VMM)
	}
	differ("jailer", strconv.FormatBool(c.Jailer), strconv.FormatBool(o.Jailer))
	differ("net", c.Net, o.Net)
	differ("host_access", c.HostAccess, o.HostAccess)
	differ("publish", forwards(c.Forwards), forwards(o.Forwards))
	differ("kernel_args", c.KernelArgs, strings.TrimSpace(o.KernelArgs))
	if o.Ready != "auto" {
		differ("ready", c.Ready, o.Ready)
	}
	differ("ready_marker", c.ReadyMarker, o.ReadyMarker)
	differ("hostname", c.Hostname, o.Hostname)
	var have, want []string
	for _, m := range c.Mounts {
		have = append(have, m.String())
	}
	for _, m := range v.mounts {
		want = append(want, v.file.resolvedPair(m.s, home, func(s string) (string, error) {
			mt, err := vm.ParseMount(s)
			return mt.String(), err
		}))
	}
	differ("mounts", strings.Join(have, " "), strings.Join(want, " "))
	have, want = nil, nil
	for _, ci := range c.CopyIns {
		have = append(have, ci.String())
	}
	for _, ci := range v.copyIns {
		want = append(want, v.file.resolvedPair(ci.s, home, func(s string) (string, error) {
			c, err := vm.ParseCopyIn(s)
			return c.String(), err
		}))
	}
	differ("copy_ins", strings.Join(have, " "), strings.Join(want, " "))
	return d
}

// resolvedPair is a mount or copy-in as the VM's config would hold it,
// or as the file has it when it cannot be resolved.
func (f *File) resolvedPair(s, home string, parse func(string) (string, error)) string {
	r, err := f.hostPair(s, home)
	if err != nil {
		return s
	}
	if p, err := parse(r); err == nil {
		return p
	}
	return r
}

// forwards is a set of forwards in a canonical order.
func forwards(fs []vm.Forward) string {
	s := make([]string, 0, len(fs))
	for _, f := range fs {
		s = append(s, f.String())
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// size formats a byte count as the file would write it.
func size(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	}
	return strconv.FormatInt(n, 10)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
