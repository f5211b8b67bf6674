package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/vmm"
)

// The files SaveState writes into a snapshot directory.
const (
	StateFileName  = "vmstate"     // device and vCPU state (snapshot_path)
	MemoryFileName = "memory"      // guest memory (mem_file_path)
	DrivesFileName = "drives.json" // where the snapshotted VM's disk was
)

var _ vmm.Snapshotter = (*Driver)(nil)

// errJailed refuses snapshots of jailed VMs: Firecracker would write and
// read the files inside its chroot.
func errJailed(m vmm.Machine) error {
	return fmt.Errorf("VM %q: %w", m.Name, ErrJailedSnapshot)
}

// Version runs `firecracker --version` and returns the first line it
// prints, e.g. "Firecracker v1.16.1".
func (d *Driver) Version(ctx context.Context) (string, error) {
	bin, err := d.binary()
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	first, _, _ := strings.Cut(stdout.String(), "\n")
	if v := strings.TrimSpace(first); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("%s --version printed no version", bin)
}

// Unpause resumes the guest if Firecracker reports it "Paused" (GET /).
func (d *Driver) Unpause(ctx context.Context, m vmm.Machine, p vmm.Process) (bool, error) {
	var info struct {
		State string `json:"state"`
	}
	if err := (&Client{Socket: p.APISocket}).Get(ctx, "/", &info); err != nil {
		return false, fmt.Errorf("VM %q: %w", m.Name, err)
	}
	if info.State != "Paused" {
		return false, nil
	}
	return true, d.Resume(ctx, m, p)
}

type vmStateBody struct {
	State string `json:"state"` // "Paused" or "Resumed"
}

// Pause stops the guest's vCPUs (PATCH /vm). Firecracker flushes the
// disks when a snapshot is created, not when it pauses: copy a disk only
// after SaveState.
func (d *Driver) Pause(ctx context.Context, m vmm.Machine, p vmm.Process) error {
	if err := (&Client{Socket: p.APISocket}).Patch(ctx, "/vm", vmStateBody{"Paused"}); err != nil {
		return fmt.Errorf("pausing VM %q: %w", m.Name, err)
	}
	return nil
}

// Resume lets a paused guest run again (PATCH /vm).
func (d *Driver) Resume(ctx context.Context, m vmm.Machine, p vmm.Process) error {
	if err := (&Client{Socket: p.APISocket}).Patch(ctx, "/vm", vmStateBody{"Resumed"}); err != nil {
		return fmt.Errorf("resuming VM %q: %w", m.Name, err)
	}
	return nil
}

type snapshotCreateBody struct {
	Type     string `json:"snapshot_type"`
	Snapshot string `json:"snapshot_path"`
	Memory   string `json:"mem_file_path"`
}

// SaveState has the paused guest's full snapshot written into dir:
// StateFileName and MemoryFileName, both 0600 and synced to disk.
func (d *Driver) SaveState(ctx context.Context, m vmm.Machine, p vmm.Process, dir string) ([]string, error) {
	if d.Jailer != nil {
		return nil, errJailed(m)
	}
	names := []string{StateFileName, MemoryFileName}
	// Firecracker truncates existing files and keeps their mode: create
	// them private first, so the guest's memory is never readable by others.
	for _, name := range names {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("saving VM %q: %w", m.Name, err)
		}
	}
	body := snapshotCreateBody{Type: "Full", Snapshot: filepath.Join(dir, StateFileName), Memory: filepath.Join(dir, MemoryFileName)}
	if err := (&Client{Socket: p.APISocket}).Put(ctx, "/snapshot/create", body); err != nil {
		return nil, fmt.Errorf("saving VM %q: %w", m.Name, err)
	}
	for _, name := range names {
		if err := syncPrivate(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("saving VM %q: %w", m.Name, err)
		}
	}
	if m.Rootfs != "" {
		// The state names the disk by path, and a restore must find a file
		// there: record the path so Restore can stand in for it.
		data, _ := json.Marshal(sourceDrives{Rootfs: m.Rootfs})
		if err := os.WriteFile(filepath.Join(dir, DrivesFileName), data, 0o600); err != nil {
			return nil, fmt.Errorf("saving VM %q: %w", m.Name, err)
		}
		if err := syncPrivate(filepath.Join(dir, DrivesFileName)); err != nil {
			return nil, fmt.Errorf("saving VM %q: %w", m.Name, err)
		}
		names = append(names, DrivesFileName)
	}
	return names, nil
}

// sourceDrives is DrivesFileName: where the snapshotted VM's disk was.
type sourceDrives struct {
	Rootfs string `json:"rootfs"`
}

// standInForSource makes sure a file exists at the disk path the snapshot
// in dir names, which Firecracker opens while loading (before the clone's
// disk replaces it): when the snapshotted VM is gone (a warm image's
// throwaway VM always is), a symlink to the clone's own disk stands in,
// with the directories it needed. Loads that need one are serialized per
// snapshot. The returned func removes what was made and unlocks.
func standInForSource(dir, rootfs string) (func(), error) {
	data, err := os.ReadFile(filepath.Join(dir, DrivesFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil // an older snapshot: the path must exist
	}
	if err != nil {
		return nil, err
	}
	var src sourceDrives
	if err := json.Unmarshal(data, &src); err != nil || !filepath.IsAbs(src.Rootfs) {
		return nil, fmt.Errorf("snapshot file %s is damaged (hint: take the snapshot again)", filepath.Join(dir, DrivesFileName))
	}
	if _, err := os.Lstat(src.Rootfs); err == nil {
		return func() {}, nil
	}
	lock, err := lockfile.Acquire(context.Background(), filepath.Join(dir, ".restore.lock"), nil)
	if err != nil {
		return nil, err
	}
	var made []string // directories, deepest last
	for d := filepath.Dir(src.Rootfs); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		made = append([]string{d}, made...)
	}
	undo := func() {
		_ = os.Remove(src.Rootfs)
		for i := len(made) - 1; i >= 0; i-- {
			_ = os.Remove(made[i])
		}
		_ = lock.Unlock()
	}
	for _, d := range made {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			undo()
			return nil, fmt.Errorf("standing in for the snapshotted VM's disk: %w", err)
		}
	}
	if err := os.Symlink(rootfs, src.Rootfs); err != nil && !errors.Is(err, fs.ErrExist) {
		undo()
		return nil, fmt.Errorf("standing in for the snapshotted VM's disk: %w", err)
	}
	return undo, nil
}

// syncPrivate makes file 0600 (whatever Firecracker did to it) and
// flushes it to disk.
func syncPrivate(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", file, err)
	}
	return f.Close()
}

type (
	memBackendBody struct {
		Type string `json:"backend_type"`
		Path string `json:"backend_path"`
	}
	netOverrideBody struct {
		ID      string `json:"iface_id"`
		HostDev string `json:"host_dev_name"`
	}
	vsockOverrideBody struct {
		UDSPath string `json:"uds_path"`
	}
	snapshotLoadBody struct {
		Snapshot      string             `json:"snapshot_path"`
		MemBackend    memBackendBody     `json:"mem_backend"`
		NetOverrides  []netOverrideBody  `json:"network_overrides,omitempty"`
		VsockOverride *vsockOverrideBody `json:"vsock_override,omitempty"`
		ResumeVM      bool               `json:"resume_vm"`
		ClockRealtime bool               `json:"clock_realtime,omitempty"`
	}
	partialDriveBody struct {
		ID   string `json:"drive_id"`
		Path string `json:"path_on_host"`
	}
)

// loadBody is the /snapshot/load request restoring dir as m, for a
// Firecracker of the given version. The snapshot names the tap and vsock
// socket of the VM it was taken from: m's replace them. clock_realtime
// advances the guest's kvmclock by the time since the snapshot; older
// Firecrackers reject it as an unknown field.
func loadBody(m vmm.Machine, l layout, cid uint32, dir, version string) snapshotLoadBody {
	b := snapshotLoadBody{
		Snapshot:      filepath.Join(dir, StateFileName),
		MemBackend:    memBackendBody{Type: "File", Path: filepath.Join(dir, MemoryFileName)},
		ClockRealtime: atLeast(version, 1, 16),
	}
	if m.Net.Mode == "tap" {
		b.NetOverrides = []netOverrideBody{{ID: "eth0", HostDev: m.Net.Tap}}
	}
	if cid != 0 {
		b.VsockOverride = &vsockOverrideBody{UDSPath: l.vsock}
	}
	return b
}

// Restore spawns Firecracker detached, loads the snapshot in dir with m's
// tap, vsock socket and disk in place of the original VM's, and resumes
// it. Firecracker reopens the original VM's disk while loading; if that
// VM is gone, the clone's disk stands in at its path for the load (see
// standInForSource). The guest writes only to m.Rootfs. On failure the
// spawned process is killed.
func (d *Driver) Restore(ctx context.Context, m vmm.Machine, dir string) (vmm.Process, error) {
	if d.Jailer != nil {
		return vmm.Process{}, errJailed(m)
	}
	if err := validateRestore(m, dir); err != nil {
		return vmm.Process{}, err
	}
	s, err := d.spawn(ctx, m)
	if err != nil {
		return vmm.Process{}, err
	}
	if err := load(ctx, s.client, m, s.layout, d.VsockCID, dir); err != nil {
		return vmm.Process{}, s.fail("restoring", err)
	}
	return s.process(), nil
}

// validateRestore checks m and the snapshot files before anything is
// spawned. m.Kernel and m.Initrd are not used: the guest is already booted.
func validateRestore(m vmm.Machine, dir string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("restoring VM %q: "+format, append([]any{m.Name}, a...)...)
	}
	switch {
	case m.Dir == "":
		return bad("no state directory")
	case m.MemoryMiB < 1:
		return bad("memory size %d MiB is not positive", m.MemoryMiB)
	case m.Rootfs == "":
		return bad("no rootfs")
	}
	files := []struct{ what, path string }{
		{"rootfs", m.Rootfs},
		{"snapshot state", filepath.Join(dir, StateFileName)},
		{"snapshot memory", filepath.Join(dir, MemoryFileName)},
	}
	for _, f := range files {
		st, err := os.Stat(f.path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return bad("%s file %s does not exist", f.what, f.path)
			}
			return bad("%s: %w", f.what, err)
		}
		if !st.Mode().IsRegular() {
			return bad("%s %s is not a regular file", f.what, f.path)
		}
	}
	return validateDevices(m)
}

// load asks Firecracker its version, sets up its log, loads the snapshot
// paused, points the root drive at m's disk and resumes the guest.
func load(ctx context.Context, c *Client, m vmm.Machine, l layout, cid uint32, dir string) error {
	version, err := apiVersion(ctx, c)
	if err != nil {
		return err
	}
	logger := loggerRequest(l)
	if err := c.Put(ctx, logger.path, logger.body); err != nil {
		return err
	}
	done, err := standInForSource(dir, l.rootfs)
	if err != nil {
		return err
	}
	err = c.Put(ctx, "/snapshot/load", loadBody(m, l, cid, dir, version))
	if err == nil {
		err = c.Patch(ctx, "/drives/rootfs", partialDriveBody{ID: "rootfs", Path: l.rootfs})
	}
	done()
	if err != nil {
		return err
	}
	return c.Patch(ctx, "/vm", vmStateBody{"Resumed"})
}
