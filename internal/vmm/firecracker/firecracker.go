// Package firecracker runs microVMs with Firecracker: it spawns
// `firecracker --api-sock …` (optionally through the jailer) detached from
// banger, configures the VM over Firecracker's REST API on that unix socket
// and boots it; shutdown is Ctrl-Alt-Del, which needs `reboot=k` and the
// i8042 keyboard driver in the guest (the boot arguments set the former).
//
// Firecracker's serial console is its stdin and stdout. With ConsoleRelay
// set, they are a pseudo-terminal held by a console relay (package
// consolerelay), which logs the output and serves the console on a unix
// socket, as QEMU's console socket does; without it the output is only
// appended to the console log.
//
// It works with Firecracker v0.24 and later. Firecracker has no user-mode
// networking: a VM has either no network or a tap device.
package firecracker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/vmm"
)

// Files the driver keeps in a VM's state directory (or, with the jailer,
// in its chroot).
const (
	SocketName        = "fc.sock"         // the API socket
	ConsoleSocketName = "console.sock"    // the console relay's socket, in the VM's directory
	LogName           = "firecracker.log" // Firecracker's own log (PUT /logger)
	VsockName         = "vsock.sock"      // host side of the vsock device
)

// Driver is the Firecracker vmm.Driver. The zero value runs `firecracker`
// from PATH without the jailer and without vsock.
type Driver struct {
	// Binary is the firecracker executable: a path, or a name looked up
	// on PATH. Empty means "firecracker".
	Binary string
	// Jailer, when set, starts Firecracker through the jailer.
	Jailer *Jailer
	// VsockCID, when non-zero, adds a vsock device with this guest CID.
	// Its host side is the unix socket VsockPath returns.
	VsockCID uint32
	// SocketTimeout bounds the wait for the API socket. Zero means 5s.
	SocketTimeout time.Duration
	// ConsoleRelay is the command that runs the console relay
	// (consolerelay.Main) in a process of its own, such as banger's
	// hidden "internal console-relay" command. Empty means no relay: the
	// console is write-only, to the log.
	ConsoleRelay []string
}

var _ vmm.Driver = (*Driver)(nil)

// Name returns "firecracker".
func (d *Driver) Name() string { return "firecracker" }

// Check reports whether the firecracker (and, if used, jailer) binaries can
// be found. Whether KVM is usable is the caller's question.
func (d *Driver) Check() error {
	if _, err := d.binary(); err != nil {
		return err
	}
	if d.Jailer != nil {
		if _, err := d.Jailer.binary(); err != nil {
			return err
		}
	}
	return nil
}

// releaseHint is how to get Firecracker: it is not packaged by Debian.
const releaseHint = "Firecracker ships release binaries, not a Debian package: download " +
	"firecracker-<version>-x86_64.tgz from https://github.com/firecracker-microvm/firecracker/releases " +
	"and put its firecracker and jailer binaries on PATH"

func (d *Driver) binary() (string, error) {
	return lookBinary(d.Binary, "firecracker")
}

// lookBinary resolves name (default def) to an absolute executable path.
func lookBinary(name, def string) (string, error) {
	if name == "" {
		name = def
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) && filepath.Base(name) == name {
			return "", &vmm.NotFoundError{Program: name, Install: releaseHint, Other: "qemu"}
		}
		return "", fmt.Errorf("%s binary: %w", def, err)
	}
	return filepath.Abs(p)
}

// VsockPath is the host unix socket of m's vsock device (see VsockCID).
// Host-initiated connections dial it and send "CONNECT <port>\n".
func (d *Driver) VsockPath(m vmm.Machine) string {
	if d.Jailer != nil {
		return filepath.Join(d.JailDir(m), "root", VsockName)
	}
	return filepath.Join(m.Dir, VsockName)
}

// Sockets are the unix sockets started for m: Firecracker's API socket
// (in the jail with the jailer), the console relay's with ConsoleRelay,
// and the vsock's host side with VsockCID.
func (d *Driver) Sockets(m vmm.Machine) []vmm.Socket {
	api := filepath.Join(m.Dir, SocketName)
	if d.Jailer != nil {
		api = filepath.Join(d.JailDir(m), "root", SocketName)
	}
	socks := []vmm.Socket{{What: "firecracker API socket", Path: api}}
	if len(d.ConsoleRelay) > 0 {
		socks = append(socks, vmm.Socket{What: "console socket", Path: filepath.Join(m.Dir, ConsoleSocketName)})
	}
	if d.VsockCID != 0 {
		socks = append(socks, vmm.Socket{What: "vsock socket", Path: d.VsockPath(m)})
	}
	return socks
}

// Start spawns Firecracker detached, configures m and boots it. On any
// failure, including ctx being cancelled, the spawned process is killed.
func (d *Driver) Start(ctx context.Context, m vmm.Machine) (vmm.Process, error) {
	if err := validate(m); err != nil {
		return vmm.Process{}, err
	}
	s, err := d.spawn(ctx, m)
	if err != nil {
		return vmm.Process{}, err
	}
	if err := configure(ctx, s.client, m, s.layout, d.VsockCID); err != nil {
		return vmm.Process{}, s.fail("configuring", err)
	}
	return s.process(), nil
}

// Shutdown sends Ctrl-Alt-Del; a guest booted with reboot=k then resets,
// and Firecracker exits. It does not wait for that. Firecracker has
// SendCtrlAltDel on x86_64 only (it emulates an i8042 there and nothing
// like it on aarch64), so for an arm64 guest Shutdown sends nothing and
// returns an error wrapping vmm.ErrNoShutdown: the caller asks the guest
// to reboot over SSH (PSCI then ends Firecracker) or kills it.
func (d *Driver) Shutdown(ctx context.Context, m vmm.Machine, p vmm.Process) error {
	if m.Arch == arch.ARM64 {
		return fmt.Errorf("stopping VM %q: %w: Firecracker's SendCtrlAltDel is x86_64 only", m.Name, vmm.ErrNoShutdown)
	}
	if _, err := os.Stat(p.APISocket); err != nil {
		return fmt.Errorf("stopping VM %q: firecracker API socket: %w", m.Name, err)
	}
	c := &Client{Socket: p.APISocket}
	if err := c.Action(ctx, "SendCtrlAltDel"); err != nil {
		return fmt.Errorf("stopping VM %q: %w", m.Name, err)
	}
	return nil
}
