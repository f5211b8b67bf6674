package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// StateFileName is the migration stream SaveState writes: the guest's
// memory (zero pages as a few bytes each) and device state.
const StateFileName = "vmstate"

var _ vmm.Snapshotter = (*Driver)(nil)

// Version returns the first line of `qemu-system-x86_64 --version`.
func (d *Driver) Version(ctx context.Context) (string, error) {
	bin, err := d.binary()
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

// SaveState migrates the paused guest into dir/vmstate: QEMU writes the
// stream through `exec:cat`, with the bandwidth limit raised so the save
// runs at disk speed (the default limit is 128 MiB/s), and the guest stays
// paused. The file is created 0600 first: it holds the guest's memory.
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
	if err := q.Execute(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": int64(1) << 40}, nil); err != nil {
		return fail(err)
	}
	if err := q.Execute(ctx, "migrate", map[string]any{"uri": "exec:cat >" + shellQuote(path)}, nil); err != nil {
		return fail(err)
	}
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := q.Execute(ctx, "query-migrate", nil, &st); err != nil {
			return fail(err)
		}
		switch st.Status {
		case "completed":
			if err := syncFile(path); err != nil {
				return fail(err)
			}
			return []string{StateFileName}, nil
		case "failed", "cancelled":
			msg := st.ErrorDesc
			if msg == "" {
				msg = st.Status
			}
			if full(dir) {
				// QEMU only sees its writer die ("Broken pipe").
				return fail(fmt.Errorf("QEMU could not write %s: %w", path, syscall.ENOSPC))
			}
			return fail(fmt.Errorf("QEMU could not write %s: %s", path, msg))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Restore starts QEMU for m with `-incoming fd:3` reading dir/vmstate,
// waits until the state is loaded and lets the guest run (the source was
// paused when saved, so QEMU would otherwise stay paused).
func (d *Driver) Restore(ctx context.Context, m vmm.Machine, dir string) (vmm.Process, error) {
	path := filepath.Join(dir, StateFileName)
	f, err := os.Open(path)
	if err != nil {
		return vmm.Process{}, fmt.Errorf("restoring VM %q: snapshot state: %w", m.Name, err)
	}
	defer f.Close()
	argv, err := d.Args(m)
	if err != nil {
		return vmm.Process{}, err
	}
	argv = append(argv, "-incoming", "fd:3")
	p, err := vmmproc.SpawnWith(argv, m.ConsoleLog, vmmproc.Options{ExtraFiles: []*os.File{f}})
	if err != nil {
		return vmm.Process{}, fmt.Errorf("restoring VM %q: starting QEMU: %w", m.Name, err)
	}
	timeout := d.SocketTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	q := &QMP{Socket: filepath.Join(m.Dir, QMPSocketName)}
	if err := waitLoaded(ctx, p, q, timeout); err != nil {
		p.Kill()
		return vmm.Process{}, fmt.Errorf("restoring VM %q: %w", m.Name, err)
	}
	if err := q.Execute(ctx, "cont", nil, nil); err != nil {
		p.Kill()
		return vmm.Process{}, fmt.Errorf("restoring VM %q: %w", m.Name, err)
	}
	return vmm.Process{PID: p.PID(), APISocket: q.Socket, ConsoleSocket: filepath.Join(m.Dir, ConsoleSocketName)}, nil
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
