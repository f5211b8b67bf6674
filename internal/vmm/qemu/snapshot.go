package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/thaloco/banger/internal/diskcopy"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// StateFileName is the migration stream SaveState writes: the guest's
// device state, and its memory (zero pages as a few bytes each) unless
// that is in MemoryFileName.
const StateFileName = "vmstate"

// MemoryFileName is the guest's RAM as SaveState copies it from a shared
// memfd: a sparse file of the RAM's size. Snapshots of VMs whose RAM is
// private have none; their vmstate holds the RAM.
const MemoryFileName = "memory"

var _ vmm.Snapshotter = (*Driver)(nil)

// Version returns the first line of `qemu-system-x86_64 --version` (of
// the QEMU binary of d.Arch's guests).
func (d *Driver) Version(ctx context.Context) (string, error) {
	bin, err := d.binary(d.Arch)
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first), nil
}

// Pause stops the guest's vCPUs; QEMU drains and flushes the disk before
// the stop command returns.
func (d *Driver) Pause(ctx context.Context, m vmm.Machine, p vmm.Process) error {
	if err := (&QMP{Socket: p.APISocket}).Execute(ctx, "stop", nil, nil); err != nil {
		return fmt.Errorf("pausing VM %q: %w", m.Name, err)
	}
	return nil
}

// Resume lets a paused guest run again.
func (d *Driver) Resume(ctx context.Context, m vmm.Machine, p vmm.Process) error {
	if err := (&QMP{Socket: p.APISocket}).Execute(ctx, "cont", nil, nil); err != nil {
		return fmt.Errorf("resuming VM %q: %w", m.Name, err)
	}
	return nil
}

// Unpause resumes a guest that a snapshot left stopped: "paused", or
// "postmigrate" once a save completed (the guest stays stopped after it),
// cancelling a save that still runs first.
func (d *Driver) Unpause(ctx context.Context, m vmm.Machine, p vmm.Process) (bool, error) {
	st, err := d.Status(ctx, p)
	if err != nil {
		return false, fmt.Errorf("VM %q: %w", m.Name, err)
	}
	switch st {
	case "paused", "postmigrate", "finish-migrate":
	default:
		return false, nil
	}
	q := &QMP{Socket: p.APISocket}
	for {
		var mig struct {
			Status string `json:"status"`
		}
		if err := q.Execute(ctx, "query-migrate", nil, &mig); err != nil {
			return false, fmt.Errorf("VM %q: %w", m.Name, err)
		}
		switch mig.Status {
		case "", "none", "completed", "failed", "cancelled":
			return true, d.Resume(ctx, m, p)
		case "cancelling":
		default:
			if err := q.Execute(ctx, "migrate_cancel", nil, nil); err != nil {
				return false, fmt.Errorf("VM %q: cancelling its snapshot: %w", m.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// SaveState saves the paused guest into dir. The device state goes
// through QEMU's migration stream, written by `exec:cat` into dir/vmstate
// with the bandwidth limit raised so the save runs at disk speed (the
// default limit is 128 MiB/s). Guest RAM that is a shared memfd (every
// booted VM's, see sharedRAM) is left out of the stream (x-ignore-shared)
// and copied instead from the memfd into dir/memory, a sparse file of the
// RAM's size with zero pages left as holes, which Restore maps instead of
// loading. A VM restored from such a file has private RAM, which goes
// into the stream as usual. The guest stays paused; the files are 0600:
// they hold the guest's memory.
func (d *Driver) SaveState(ctx context.Context, m vmm.Machine, p vmm.Process, dir string) ([]string, error) {
	path := filepath.Join(dir, StateFileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("saving VM %q: %w", m.Name, err)
	}
	f.Close()
	q := &QMP{Socket: p.APISocket}
	fail := func(err error) ([]string, error) {
		// A save still running would keep writing; cancel it (best effort).
		_ = q.Execute(context.WithoutCancel(ctx), "migrate_cancel", nil, nil)
		return nil, fmt.Errorf("saving VM %q: %w", m.Name, err)
	}
	ram, err := sharedRAMFile(p.PID)
	if err != nil {
		return fail(err)
	}
	if err := setIgnoreShared(ctx, q, ram != ""); err != nil {
		return fail(err)
	}
	if err := q.Execute(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": int64(1) << 40}, nil); err != nil {
		return fail(err)
	}
	if err := q.Execute(ctx, "migrate", map[string]any{"uri": "exec:cat >" + shellQuote(path)}, nil); err != nil {
		return fail(err)
	}
	if err := waitMigrated(ctx, q, dir, path); err != nil {
		return fail(err)
	}
	if err := syncFile(path); err != nil {
		return fail(err)
	}
	if ram == "" {
		return []string{StateFileName}, nil
	}
	err = diskcopy.CopyWith(ctx, filepath.Join(dir, MemoryFileName), ram, diskcopy.Options{SkipZeros: true, Perm: 0o600})
	if err != nil {
		return nil, fmt.Errorf("saving VM %q: copying its memory: %w", m.Name, err)
	}
	return []string{StateFileName, MemoryFileName}, nil
}

// waitMigrated waits until the outgoing migration into path completes.
func waitMigrated(ctx context.Context, q *QMP, dir, path string) error {
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := q.Execute(ctx, "query-migrate", nil, &st); err != nil {
			return err
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			msg := st.ErrorDesc
			if msg == "" {
				msg = st.Status
			}
			if full(dir) {
				// QEMU only sees its writer die ("Broken pipe").
				return fmt.Errorf("QEMU could not write %s: %w", path, syscall.ENOSPC)
			}
			return fmt.Errorf("QEMU could not write %s: %s", path, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// setIgnoreShared turns QEMU's x-ignore-shared migration capability on or
// off: with it, shared RAM is not part of the stream.
func setIgnoreShared(ctx context.Context, q *QMP, on bool) error {
	caps := []map[string]any{{"capability": "x-ignore-shared", "state": on}}
	return q.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": caps}, nil)
}

// memfdName is how /proc shows the memfd QEMU's memory-backend-memfd
// creates.
const memfdName = "/memfd:memory-backend-memfd"

// sharedRAMFile returns a path that opens the guest RAM memfd of the QEMU
// process pid (/proc/PID/fd/N), or "" if its RAM is not one (a VM
// restored from a memory file).
func sharedRAMFile(pid int) (string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("finding the guest memory of QEMU (pid %d): %w", pid, err)
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(target, memfdName) {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", nil
}

// Restore starts QEMU for m waiting for an incoming migration, feeds it
// dir/vmstate through fd 3, waits until the state is loaded and lets the
// guest run (the source was paused when saved, so QEMU would otherwise
// stay paused). When the snapshot has a memory file, the guest's RAM is
// that file mapped private (see fileRAM): nothing of it is read before
// the guest touches it, which makes the restore take about as long as
// QEMU takes to start.
func (d *Driver) Restore(ctx context.Context, m vmm.Machine, dir string) (vmm.Process, error) {
	fail := func(err error) (vmm.Process, error) {
		return vmm.Process{}, fmt.Errorf("restoring VM %q: %w", m.Name, err)
	}
	path := filepath.Join(dir, StateFileName)
	f, err := os.Open(path)
	if err != nil {
		return fail(fmt.Errorf("snapshot state: %w", err))
	}
	defer f.Close()
	ram := sharedRAM(m)
	mem := filepath.Join(dir, MemoryFileName)
	lazy := false
	switch st, err := os.Stat(mem); {
	case err == nil:
		if want := int64(m.MemoryMiB) << 20; st.Size() != want {
			return fail(fmt.Errorf("snapshot memory file %s is %d bytes, not the %d MiB of the VM (hint: take the snapshot again)", mem, st.Size(), m.MemoryMiB))
		}
		ram, lazy = fileRAM(m, mem), true
	case !errors.Is(err, fs.ErrNotExist):
		return fail(fmt.Errorf("snapshot memory: %w", err))
	}
	argv, err := d.args(m, ram)
	if err != nil {
		return vmm.Process{}, err
	}
	argv = append(argv, "-incoming", "defer")
	p, err := vmmproc.SpawnWith(argv, m.ConsoleLog, vmmproc.Options{ExtraFiles: []*os.File{f}})
	if err != nil {
		return fail(fmt.Errorf("starting QEMU: %w", err))
	}
	timeout := d.SocketTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	q := &QMP{Socket: filepath.Join(m.Dir, QMPSocketName)}
	kill := func(err error) (vmm.Process, error) {
		p.Kill()
		return fail(err)
	}
	if err := waitIncoming(ctx, p, q, timeout); err != nil {
		return kill(err)
	}
	if lazy {
		if err := setIgnoreShared(ctx, q, true); err != nil {
			return kill(err)
		}
	}
	if err := q.Execute(ctx, "migrate-incoming", map[string]any{"uri": "fd:3"}, nil); err != nil {
		return kill(err)
	}
	if err := waitLoaded(ctx, p, q, timeout); err != nil {
		return kill(err)
	}
	if err := q.Execute(ctx, "cont", nil, nil); err != nil {
		return kill(err)
	}
	return vmm.Process{PID: p.PID(), APISocket: q.Socket, ConsoleSocket: filepath.Join(m.Dir, ConsoleSocketName)}, nil
}

// waitIncoming waits until QEMU answers on QMP, ready for the incoming
// stream.
func waitIncoming(ctx context.Context, p *vmmproc.Proc, q *QMP, timeout time.Duration) error {
	return waitStatus(ctx, p, q, timeout, "starting", func(st string) (bool, error) {
		if st == "inmigrate" {
			return true, nil
		}
		return false, fmt.Errorf("QEMU is %q instead of waiting for the snapshot%s", st, output(p))
	})
}

// waitLoaded waits until QEMU has read the whole incoming stream: the
// machine is no longer "inmigrate".
func waitLoaded(ctx context.Context, p *vmmproc.Proc, q *QMP, timeout time.Duration) error {
	return waitStatus(ctx, p, q, timeout, "loading the snapshot", func(st string) (bool, error) {
		switch st {
		case "inmigrate":
			return false, nil
		case "paused", "postmigrate", "prelaunch", "running":
			return true, nil
		}
		return false, fmt.Errorf("QEMU is %q after loading the snapshot%s", st, output(p))
	})
}

// full reports whether the file system holding dir has (almost) no space
// left for an unprivileged writer.
func full(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Bavail*uint64(st.Bsize) < 1<<20
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// shellQuote quotes s for the /bin/sh QEMU runs exec: URIs with.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
