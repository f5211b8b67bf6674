// Package vmm defines what banger needs from a virtual machine monitor:
// start a described microVM detached from banger, ask it to shut down.
// Drivers live in the subpackages (qemu, firecracker).
package vmm

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Machine describes one microVM to boot.
type Machine struct {
	Name    string
	Kernel  string // path to an uncompressed vmlinux (arm64: the boot Image)
	Initrd  string // optional initrd path
	Cmdline string // kernel command line; drivers add what their devices need
	Rootfs  string // the VM's own writable ext4 disk, /dev/vda in the guest
	// RootfsFormat is Rootfs's format: "raw" ("" means raw), or "qcow2"
	// (an overlay whose backing file the VMM opens read-only; QEMU only).
	RootfsFormat string
	CPUs         int
	MemoryMiB    int
	Net          Network
	// Dir is the VM's state directory (sockets, pid, logs). Keep it short:
	// unix socket paths must fit in MaxSocketPath bytes.
	Dir string
	// ConsoleLog is the file the guest's serial console is appended to.
	ConsoleLog string
	// Accel is "kvm" or "tcg"; only QEMU can use tcg.
	Accel string
	// Arch is the guest's architecture (package arch): "" or x86_64, or
	// arm64.
	Arch string
	// Drives are extra disks after the rootfs (/dev/vdb, … in the guest,
	// in this order).
	Drives []Drive
	// Shares are host directories exported to the guest over virtio-9p
	// (QEMU only).
	Shares []Share
}

// Drive is an extra disk: a raw file.
type Drive struct {
	ID       string // unique among the machine's drives: letters, digits, '-'
	Path     string
	ReadOnly bool
}

// Share is a host directory the guest mounts with
// "mount -t 9p -o trans=virtio TAG DIR".
type Share struct {
	Tag      string // the 9p mount tag: letters, digits, '-', at most 31 bytes
	HostDir  string // absolute, canonical
	ReadOnly bool
}

// Validate checks what every driver needs of m: a state directory, a
// positive memory size, and a kernel, rootfs and (if set) initrd that are
// regular files. Drivers add their own checks.
func (m Machine) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("VM %q: "+format, append([]any{m.Name}, a...)...)
	}
	switch {
	case m.Dir == "":
		return bad("no state directory")
	case m.MemoryMiB < 1:
		return bad("memory size %d MiB is not positive", m.MemoryMiB)
	case m.RootfsFormat != "" && m.RootfsFormat != "raw" && m.RootfsFormat != "qcow2":
		return bad("unknown disk format %q (want raw or qcow2)", m.RootfsFormat)
	}
	files := []struct{ what, path string }{{"kernel", m.Kernel}, {"rootfs", m.Rootfs}, {"initrd", m.Initrd}}
	for _, d := range m.Drives {
		files = append(files, struct{ what, path string }{"drive " + d.ID, d.Path})
	}
	for _, sh := range m.Shares {
		if st, err := os.Stat(sh.HostDir); err != nil {
			return bad("shared folder: %w", err)
		} else if !st.IsDir() {
			return bad("shared folder %s is not a directory", sh.HostDir)
		}
	}
	for _, f := range files {
		if f.path == "" {
			if f.what == "initrd" {
				continue
			}
			return bad("no %s", f.what)
		}
		if st, err := os.Stat(f.path); err != nil {
			return bad("%s: %w", f.what, err)
		} else if !st.Mode().IsRegular() {
			return bad("%s %s is not a regular file", f.what, f.path)
		}
	}
	return nil
}

// Network is a VM's single network interface.
type Network struct {
	Mode     string // "none", "user" (QEMU only) or "tap"
	Tap      string // host tap device name, tap mode
	MAC      string // guest MAC address
	Forwards []Forward
	// Restrict (user mode) isolates the guest: it reaches nothing through
	// the network, neither the host nor outside networks; the forwards
	// into it keep working.
	Restrict bool
}

// Forward forwards a host port to a guest port (user mode networking).
type Forward struct {
	HostIP    string // usually 127.0.0.1
	HostPort  int
	GuestPort int
	Proto     string // "tcp" or "udp"
}

// Process is a started VMM.
type Process struct {
	PID       int
	APISocket string // control socket (Firecracker API or QMP)
	// ConsoleSocket is a unix socket connected to the guest's serial
	// console (read its output, write its input), "" if the driver has none.
	ConsoleSocket string
}

// Driver starts and stops microVMs with one VMM.
type Driver interface {
	// Name is "qemu" or "firecracker".
	Name() string
	// Check reports whether the VMM can run here; its error names the
	// missing binary and the package that provides it.
	Check() error
	// Start spawns the VMM detached from the caller (it survives banger
	// exiting), configures and boots m, and returns once the guest's
	// kernel has been started. Its errors name m.
	Start(ctx context.Context, m Machine) (Process, error)
	// Shutdown asks the guest to power off gracefully (ACPI power button or
	// Ctrl-Alt-Del). It does not wait for the VMM to exit.
	Shutdown(ctx context.Context, m Machine, p Process) error
}

// ErrNoShutdown is wrapped by a Driver's Shutdown when the VMM has no way
// to ask this guest to shut down (Firecracker on arm64 has no
// Ctrl-Alt-Del): the caller asks the guest itself, over SSH, or ends the
// VMM.
var ErrNoShutdown = errors.New("the VMM has no way to ask this guest to shut down")

// ArchChecker is a Driver whose Check depends on the guest's
// architecture (QEMU runs another binary for each).
type ArchChecker interface {
	// CheckArch is Check for guests of architecture a ("" is x86_64).
	CheckArch(a string) error
}

// Snapshotter is a Driver that can save a running guest (memory and device
// state) and bring copies of it back. A snapshot is a directory of files
// the driver writes; the VM's disk is copied by the caller while the guest
// is paused, so disk and memory agree.
type Snapshotter interface {
	Driver
	// Version is the VMM's version as it reports it, e.g. "QEMU emulator
	// version 7.2.22 (Debian ...)" or "Firecracker v1.16.1". A snapshot
	// restores only with the version that wrote it.
	Version(ctx context.Context) (string, error)
	// Pause stops the guest's vCPUs. Its disk file is consistent with
	// the saved state once SaveState returns (QEMU flushes at the pause,
	// Firecracker at the snapshot): copy the disk after SaveState.
	Pause(ctx context.Context, m Machine, p Process) error
	// Resume lets a paused guest run again.
	Resume(ctx context.Context, m Machine, p Process) error
	// Unpause resumes the guest if it is paused, as a snapshot killed
	// half-way leaves it (cancelling a save still running), and reports
	// whether it was.
	Unpause(ctx context.Context, m Machine, p Process) (bool, error)
	// SaveState writes the paused guest's memory and device state into
	// dir (an existing, private directory) and returns the names of the
	// files it wrote there. The guest stays paused.
	SaveState(ctx context.Context, m Machine, p Process, dir string) ([]string, error)
	// Restore spawns the VMM detached, as Start does, loads the state that
	// SaveState wrote into dir, and lets the guest run. m describes the
	// new VM: its own name, directory, disk (a copy of the snapshot's) and
	// network (its own tap or forwards); CPUs and memory must be the
	// snapshot's. On failure the VMM is killed; the error names m.
	Restore(ctx context.Context, m Machine, dir string) (Process, error)
}

// NotFoundError is a VMM program (QEMU, Firecracker, the jailer) that is
// not on PATH.
type NotFoundError struct {
	Program string // the name looked up
	// Install says how to get it, in words that need no banger flag.
	Install string
	// Other names the other VMM, when it can run the same guest instead
	// ("" when it cannot).
	Other string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s not found on PATH: %s", e.Program, e.Install)
}
