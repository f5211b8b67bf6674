package vm

import (
	"errors"
	"fmt"
)

// RunningError refuses to remove a running VM without being forced to.
type RunningError struct{ Name string }

func (e *RunningError) Error() string { return fmt.Sprintf("VM %q is running", e.Name) }

// ErrNoSharedFolders refuses shared folders on a VMM that has no device
// for them.
var ErrNoSharedFolders = errors.New("firecracker has no shared-folder device")

// ErrNoSSHNetwork refuses SSH to a VM without a network.
var ErrNoSSHNetwork = errors.New("no network, so no SSH")

// ErrNoTapLease says a VM has never had tap networking.
var ErrNoTapLease = errors.New("no tap lease")

// ForeignArchError says the VMM cannot run a guest of Arch on this host
// (of HostArch).
type ForeignArchError struct{ VMM, Arch, HostArch string }

func (e *ForeignArchError) Error() string {
	return fmt.Sprintf("%s runs only guests of its host's architecture, and this host is %s, not %s", e.VMM, e.HostArch, e.Arch)
}

// ErrSnapshotDevices refuses to snapshot a VM with shared folders or
// copy-ins.
var ErrSnapshotDevices = errors.New("shared folders or copy-ins, which a snapshot cannot carry: QEMU cannot save a mounted 9p export, and a clone would need the VM's copy-in drives")

// SSHServerSearchError is debugfs failing to look for an SSH server in
// a disk.
type SSHServerSearchError struct {
	Disk, Stderr string
	Err          error
}

func (e *SSHServerSearchError) Error() string {
	return fmt.Sprintf("looking for an SSH server in %s with debugfs: %v: %s", e.Disk, e.Err, e.Stderr)
}

func (e *SSHServerSearchError) Unwrap() error { return e.Err }

// NoSSHSetupError says a VM's setup (What: its mounts, copy-ins, init script,
// SSH keys or hostname) cannot be applied: it is applied over SSH, which
// the VM will not have, for the reason Why.
type NoSSHSetupError struct{ What, Why string }

func (e *NoSSHSetupError) Error() string {
	return fmt.Sprintf("%s are applied over SSH, but %s", e.What, e.Why)
}

// VMError is Err of the VM called Name: "VM NAME has ERR".
type VMError struct {
	Name string
	Err  error
}

func (e *VMError) Error() string { return fmt.Sprintf("VM %q has %v", e.Name, e.Err) }

func (e *VMError) Unwrap() error { return e.Err }
