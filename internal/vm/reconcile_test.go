package vm

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestStopDiedThenCrash drives a `vm stop` that died half-way while the
// VMM lives on (reconcile turns Stopping back into Running), then a crash
// of that VMM: the crash must be recorded as one, not as a requested stop.
// The VMM is a real live process (sleep) standing in for QEMU: only its
// pid and start time matter to reconcile, and no boot is needed.
func TestStopDiedThenCrash(t *testing.T) {
	s := newStore(t, nil)
	if _, err := s.Create(context.Background(), CreateOptions{Name: "halfstop", Kernel: "test", Rootfs: shared.plain, Net: NetNone}); err != nil {
		t.Fatal(err)
	}
	vmmProc := exec.Command("sleep", "300")
	if err := vmmProc.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			_ = vmmProc.Process.Kill()
			_ = vmmProc.Wait()
		}
	})
	start, alive := procStart(vmmProc.Process.Pid)
	if !alive {
		t.Fatal("sleep is not running")
	}

	v := status(t, s, "halfstop")
	v.State.Status, v.State.PID, v.State.PIDStart = StatusStopping, vmmProc.Process.Pid, start
	if err := v.saveState(); err != nil {
		t.Fatal(err)
	}
	if v := status(t, s, "halfstop"); v.State.Status != StatusRunning || v.State.PID != vmmProc.Process.Pid {
		t.Fatalf("after the stop died with the VMM alive: %+v", v.State)
	}

	_ = vmmProc.Process.Kill()
	_ = vmmProc.Wait()
	reaped = true
	v = status(t, s, "halfstop")
	if v.State.Status != StatusCrashed || !strings.Contains(v.State.Reason, "exited or was killed") || v.State.PID != 0 {
		t.Fatalf("after the VMM died: %+v, want crashed with a reason", v.State)
	}
}
