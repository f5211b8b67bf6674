package firecracker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thaloco/banger/internal/vmm"
)

// layout is where one VM's files are, on the host and as Firecracker sees
// them: the same paths without the jailer, chroot-relative ones with it.
type layout struct {
	argv       []string // argv[0] is the executable's absolute path
	hostSocket string   // the API socket, as banger reaches it

	// Paths as Firecracker sees them.
	kernel, initrd, rootfs, logFile, vsock string
	drives                                 []string // m.Drives' paths, in order
}

// plainLayout runs Firecracker directly with its files in m.Dir.
func plainLayout(ctx context.Context, bin string, m vmm.Machine) (layout, error) {
	sock := filepath.Join(m.Dir, SocketName)
	if err := clearSocket(ctx, m.Name, sock); err != nil {
		return layout{}, err
	}
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return layout{}, fmt.Errorf("VM %q state directory: %w", m.Name, err)
	}
	logFile := filepath.Join(m.Dir, LogName)
	if err := createEmpty(logFile, -1, -1); err != nil {
		return layout{}, err
	}
	return layout{
		argv:       []string{bin, "--api-sock", sock},
		hostSocket: sock,
		kernel:     m.Kernel,
		initrd:     m.Initrd,
		rootfs:     m.Rootfs,
		drives:     drivePaths(m.Drives),
		logFile:    logFile,
		vsock:      filepath.Join(m.Dir, VsockName),
	}, nil
}

// clearSocket refuses to go on if a Firecracker already answers on sock,
// and removes the socket a dead one left behind.
func clearSocket(ctx context.Context, name, sock string) error {
	if err := vmm.ClearStaleSocket(ctx, "firecracker API socket", sock); err != nil {
		return fmt.Errorf("VM %q: %w", name, err)
	}
	return nil
}

// createEmpty creates or truncates file. Older Firecrackers open the log
// file without creating it. uid/gid of -1 leave the owner alone.
func createEmpty(file string, uid, gid int) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating firecracker log: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("creating firecracker log: %w", err)
	}
	if err := os.Lchown(file, uid, gid); err != nil {
		return fmt.Errorf("firecracker log: %w", err)
	}
	return nil
}

func drivePaths(ds []vmm.Drive) []string {
	var p []string
	for _, d := range ds {
		p = append(p, d.Path)
	}
	return p
}
