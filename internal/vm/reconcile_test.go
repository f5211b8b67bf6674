package vm

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
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
	start, alive := procStart(proc.Process.Pid)
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
