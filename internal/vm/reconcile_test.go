package vm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// TestStopDiedThenCrash drives a `vm stop` that died half-way while the
// VMM lives on (reconcile turns Stopping back into Running), then a crash
// of that VMM: the crash must be recorded as one, not as a requested stop.
// The VMM is a real live process (sleep) standing in for QEMU: only its
// pid and start time matter to reconcile, and no boot is needed.
func TestStopDiedThenCrash(t *testing.T) {
	s := newStore(t, nil)
	_, pid, kill := standInVMM(t, s, "halfstop", StatusStopping)
	if v := status(t, s, "halfstop"); v.State.Status != StatusRunning || v.State.PID != pid {
		t.Fatalf("after the stop died with the VMM alive: %+v", v.State)
	}

	kill()
	v := status(t, s, "halfstop")
	if v.State.Status != StatusCrashed || !strings.Contains(v.State.Reason, "exited or was killed") || v.State.PID != 0 {
		t.Fatalf("after the VMM died: %+v, want crashed with a reason", v.State)
	}
}

// standInVMM creates VM name (never booted) and records a live process,
// sleep, as its VMM with status st: a pid and its start time are all that
// reconcile and logs look at, so no boot is needed. kill ends and reaps
// that process (the test's cleanup does if kill was not called).
func standInVMM(t *testing.T, s *Store, name string, st Status) (v *VM, pid int, kill func()) {
	t.Helper()
	if _, err := s.Create(context.Background(), CreateOptions{Name: name, Kernel: "test", Rootfs: shared.plain, Net: NetNone}); err != nil {
		t.Fatal(err)
	}
	proc := exec.Command("sleep", "300")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = proc.Process.Kill()
			_ = proc.Wait()
		})
	}
	t.Cleanup(kill)
	start, alive := vmmproc.StartTime(proc.Process.Pid)
	if !alive {
		t.Fatal("sleep is not running")
	}
	v = status(t, s, name)
	v.State.Status, v.State.PID, v.State.PIDStart = st, proc.Process.Pid, start
	if err := v.saveState(); err != nil {
		t.Fatal(err)
	}
	return v, proc.Process.Pid, kill
}

// spawnLost starts VM name's real QEMU through its driver but leaves the
// record as a `vm start` killed right after the spawn leaves it: status
// starting, no pid. It returns the QEMU's pid.
func spawnLost(t *testing.T, s *Store, name string) int {
	t.Helper()
	ctx := context.Background()
	v := status(t, s, name)
	m, drv, err := s.machine(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	p, err := drv.Start(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(p.PID, syscall.SIGKILL) })
	v.State.Status, v.State.PID, v.State.PIDStart = StatusStarting, 0, 0
	if err := v.saveState(); err != nil {
		t.Fatal(err)
	}
	return p.PID
}

// gone waits up to 10s for process pid to be gone (or a zombie).
func gone(pid int) bool {
	for range 500 {
		if _, alive := vmmproc.StartTime(pid); !alive {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestLostVMMs: a QEMU that its VM's record does not know (a start killed
// after the spawn) is found by its command line: listing VMs ends it and
// records the VM stopped, so the next start runs one QEMU, not two; and
// `vm rm --force` of a VM whose record is broken ends its QEMU too.
func TestLostVMMs(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	for _, n := range []string{"lost", "broken"} {
		if _, err := s.Create(ctx, CreateOptions{Name: n, Kernel: "test", Rootfs: shared.plain, Net: NetNone}); err != nil {
			t.Fatal(err)
		}
	}
	pid := spawnLost(t, s, "lost")
	if _, err := s.List(); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatalf("QEMU %d of VM lost still runs after vm list", pid)
	}
	if v := status(t, s, "lost"); v.State.Status.active() {
		t.Fatalf("VM lost after its QEMU was ended: %+v", v.State)
	}
	v := startRetry(t, s, "lost")
	if strays := vmmproc.Strays(v.Dir, v.State.Process()); len(strays) != 0 {
		t.Errorf("VMMs besides the recorded one after the start: %+v", strays)
	}
	if _, err := s.Stop(ctx, "lost", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}

	pid = spawnLost(t, s, "broken")
	if err := os.WriteFile(filepath.Join(s.Layout.VM("broken"), stateFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	// As if it had been a jailed Firecracker VM: its jail goes too.
	jail := s.jailDir(&VM{Config: Config{Name: "broken", VMM: VMMFirecracker, Jailer: true}})
	if err := os.MkdirAll(filepath.Join(jail, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "broken", true); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatalf("QEMU %d of the broken VM still runs after vm rm --force", pid)
	}
	if _, err := os.Stat(jail); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the broken VM's jail %s is still there: %v", jail, err)
	}
}
