package qemu

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/thaloco/banger/internal/vmm"
)

// sharedRAM is the guest RAM of a booted VM: a memfd mapped shared, which
// a snapshot copies to a file while the guest is paused instead of
// streaming it through the migration (see SaveState). A memfd, unlike a
// file in /dev/shm, has no size limit that could make a guest access
// fault, and leaves nothing behind when QEMU exits. The cost: the host's
// transparent huge pages apply to it only where
// /sys/kernel/mm/transparent_hugepage/shmem_enabled allows ("advise").
func sharedRAM(m vmm.Machine) string {
	return fmt.Sprintf("memory-backend-memfd,id=%s,size=%dM,share=on", ramID(m), m.MemoryMiB)
}

// fileRAM is the guest RAM of a VM restored from a snapshot's memory
// file: the file mapped private, so the guest reads its pages from the
// page cache as it touches them and its writes stay its own (the file is
// never written, and any number of clones share it).
func fileRAM(m vmm.Machine, path string) string {
	return fmt.Sprintf("memory-backend-file,id=%s,size=%dM,mem-path=%s,share=off", ramID(m), m.MemoryMiB, opt(path))
}

// ramID is the id of m's RAM backend (see target.ramID).
func ramID(m vmm.Machine) string {
	t, _ := targetFor(m.Arch) // checked by validate
	return t.ramID
}

// Args returns the complete QEMU command line (binary first) that Start
// runs for m. It is exported so that users and benchmarks can run the
// same VMM by hand.
func (d *Driver) Args(m vmm.Machine) ([]string, error) { return d.args(m, sharedRAM(m)) }

// args is Args with the guest RAM's -object spec.
func (d *Driver) args(m vmm.Machine, ram string) ([]string, error) {
	if err := validate(m); err != nil {
		return nil, err
	}
	t, _ := targetFor(m.Arch) // checked by validate
	bin, err := d.binary(m.Arch)
	if err != nil {
		return nil, err
	}
	cpu := "host"
	if m.Accel == "tcg" {
		cpu = "max"
	}
	a := []string{bin,
		"-name", "banger-" + m.Name + ",process=banger-" + m.Name,
		"-M", t.machine + ",accel=" + m.Accel + ",memory-backend=" + t.ramID,
		"-cpu", cpu,
		"-smp", strconv.Itoa(m.CPUs),
		"-m", strconv.Itoa(m.MemoryMiB),
		"-object", ram,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
	}
	if t.x86 {
		a = append(a, "-device", "i8042")
	}
	a = append(a,
		"-chardev", "socket,id=con,path="+opt(filepath.Join(m.Dir, ConsoleSocketName))+
			",server=on,wait=off,logfile="+opt(m.ConsoleLog)+",logappend=on",
		"-serial", "chardev:con",
		"-chardev", "socket,id=qmp,path="+opt(filepath.Join(m.Dir, QMPSocketName))+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-kernel", m.Kernel,
	)
	if m.Initrd != "" {
		a = append(a, "-initrd", m.Initrd)
	}
	a = append(a, "-append", t.cmdline(d, m),
		"-drive", "id=rootfs,file="+opt(m.Rootfs)+",format="+diskFormat(m)+",if=none,discard=unmap",
		"-device", "virtio-blk-device,drive=rootfs")
	for _, dr := range m.Drives {
		ro := ""
		if dr.ReadOnly {
			ro = ",readonly=on"
		}
		a = append(a, "-drive", "id="+opt(dr.ID)+",file="+opt(dr.Path)+",format=raw,if=none"+ro,
			"-device", "virtio-blk-device,drive="+opt(dr.ID))
	}
	for i, sh := range m.Shares {
		// mapped-xattr: the guest's owners and modes are kept in
		// user.virtfs.* xattrs of the host files, which QEMU creates as
		// its own user; the guest cannot make host files owned by
		// others, setuid or device nodes.
		id := "fs" + strconv.Itoa(i)
		fsdev := "local,id=" + id + ",path=" + opt(sh.HostDir) + ",security_model=mapped-xattr"
		if sh.ReadOnly {
			fsdev += ",readonly=on"
		}
		a = append(a, "-fsdev", fsdev, "-device", "virtio-9p-device,fsdev="+id+",mount_tag="+opt(sh.Tag))
	}
	net, err := netArgs(m.Net)
	if err != nil {
		return nil, fmt.Errorf("VM %q: %w", m.Name, err)
	}
	return t.orderDisks(append(a, net...)), nil
}

// diskFormat is the -drive format of m's disk. A qcow2 overlay's backing
// file is named in its header; QEMU opens backing files read-only, and a
// guest's discards in an overlay become zero clusters (they never expose
// the backing file's data again).
func diskFormat(m vmm.Machine) string {
	if m.RootfsFormat == "" {
		return "raw"
	}
	return m.RootfsFormat
}

// netArgs are the -netdev/-device arguments of the VM's network.
func netArgs(n vmm.Network) ([]string, error) {
	var netdev string
	switch n.Mode {
	case "", "none":
		return nil, nil
	case "user":
		netdev = "user,id=n0"
		if n.Restrict {
			netdev += ",restrict=on"
		}
		for _, f := range n.Forwards {
			proto := f.Proto
			if proto == "" {
				proto = "tcp"
			}
			// Checked, not escaped: hostfwd takes an IPv4 address and
			// ports, and anything else would change the option's meaning.
			a, err := netip.ParseAddr(f.HostIP)
			switch {
			case err != nil || !a.Is4():
				return nil, fmt.Errorf("port forward host address %q is not an IPv4 address", f.HostIP)
			case proto != "tcp" && proto != "udp":
				return nil, fmt.Errorf("port forward protocol %q is not tcp or udp", f.Proto)
			case f.HostPort < 1 || f.HostPort > 65535 || f.GuestPort < 1 || f.GuestPort > 65535:
				return nil, fmt.Errorf("port forward %d->%d: ports must be 1 to 65535", f.HostPort, f.GuestPort)
			}
			netdev += fmt.Sprintf(",hostfwd=%s:%s:%d-:%d", proto, a, f.HostPort, f.GuestPort)
		}
	case "tap":
		if n.Tap == "" {
			return nil, fmt.Errorf("tap networking without a tap device name")
		}
		netdev = "tap,id=n0,ifname=" + opt(n.Tap) + ",script=no,downscript=no"
	default:
		return nil, fmt.Errorf("unknown network mode %q (want user, tap or none)", n.Mode)
	}
	dev := "virtio-net-device,netdev=n0"
	if n.MAC != "" {
		dev += ",mac=" + n.MAC
	}
	return []string{"-netdev", netdev, "-device", dev}, nil
}

// validate checks m before anything is spawned.
func validate(m vmm.Machine) error {
	if err := m.Validate(); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("VM %q: "+format, append([]any{m.Name}, a...)...)
	}
	switch {
	case m.ConsoleLog == "":
		return bad("no console log file")
	case m.Accel != "kvm" && m.Accel != "tcg":
		return bad("unknown accelerator %q (want kvm or tcg)", m.Accel)
	case m.CPUs < 1:
		return bad("needs at least one vCPU, not %d", m.CPUs)
	}
	if _, err := targetFor(m.Arch); err != nil {
		return bad("%w", err)
	}
	for _, sock := range sockets(m) {
		if err := vmm.CheckSocketPath(sock.What, sock.Path); err != nil {
			return bad("%w", err)
		}
	}
	return nil
}

// Sockets are the unix sockets QEMU creates for m: QMP and the console.
func (d *Driver) Sockets(m vmm.Machine) []vmm.Socket { return sockets(m) }

func sockets(m vmm.Machine) []vmm.Socket {
	return []vmm.Socket{
		{What: "QMP socket", Path: filepath.Join(m.Dir, QMPSocketName)},
		{What: "console socket", Path: filepath.Join(m.Dir, ConsoleSocketName)},
	}
}

// opt escapes a value for QEMU's comma-separated option syntax.
func opt(s string) string { return strings.ReplaceAll(s, ",", ",,") }
