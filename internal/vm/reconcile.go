package vm

import (
	"os"
	"time"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/logtail"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// reconcile brings v's recorded status in line with its VMM process. It
// writes only when it can take the VM's lock without waiting: a VM that
// another banger command is starting or stopping is shown as recorded.
func (s *Store) reconcile(v *VM) {
	if !v.State.Status.active() {
		return
	}
	l, err := lockfile.TryLock(s.lockPath(v.Name()))
	if err != nil {
		return
	}
	defer l.Unlock()
	if fresh, err := load(v.Dir); err == nil {
		*v = *fresh
	}
	if reconcileLocked(v) {
		_ = v.saveState()
	}
}

// reconcileLocked is reconcile for a caller holding the VM's lock. It
// reports whether it changed v's state.
func reconcileLocked(v *VM) bool {
	if !v.State.Status.active() {
		return false
	}
	if v.State.Process().Alive() && v.State.Status == StatusStarting && v.State.RestorePending {
		// A restore whose banger died before the clone identity step
		// finished: the guest still has the snapshot's identity (on --net
		// tap, its tap went with banger's namespace). End it; the next
		// start restores again, from a fresh copy of the disk.
		_ = v.State.Process().Kill(0)
		_, _ = vmmproc.KillStrays(v.Dir, vmmproc.ID{})
		clearRuntime(v)
		v.State.Status, v.State.Reason = StatusStopped, "restore interrupted; the next start restores the snapshot again"
		return true
	}
	if v.State.Process().Alive() && guestHalted(v) {
		// The guest powered off, which ends no microVM VMM: end it.
		_ = v.State.Process().Kill(time.Second)
	}
	if v.State.Process().Alive() {
		// A start or stop whose banger died half-way: the VMM is what counts.
		if v.State.Status != StatusRunning {
			v.State.Status = StatusRunning
			return true
		}
		return false
	}
	// A VMM the record lost (a start killed before it saved the pid) is
	// found by its command line and ended.
	_, _ = vmmproc.KillStrays(v.Dir, v.State.Process())
	markGone(v)
	return true
}

// markGone records that v's VMM is gone: stopped when banger asked for it
// (the status is still Stopping: a stop that reconcile saw die half-way
// has turned it back into Running) or the guest shut down by itself,
// crashed otherwise, with the reason from the console log. Stale sockets
// and the pid are cleared.
func markGone(v *VM) {
	switch v.State.Status {
	case StatusStopping:
		v.State.Status, v.State.Reason = StatusStopped, ""
	case StatusStarting:
		// The banger that was starting it died (reconcile runs only when
		// nobody holds the VM's lock).
		v.State.Status, v.State.Reason = StatusStopped, "start interrupted"
	default:
		reason, crashed := crashReason(logtail.ReadFrom(v.ConsoleLog(), v.State.ConsoleOffset, 1<<20))
		v.State.Status, v.State.Reason = StatusStopped, reason
		if crashed {
			v.State.Status = StatusCrashed
		}
	}
	clearRuntime(v)
}

// clearRuntime forgets the VMM process and removes its sockets.
func clearRuntime(v *VM) {
	for _, sock := range []string{v.State.APISocket, v.State.ConsoleSocket} {
		if sock != "" {
			_ = os.Remove(sock)
		}
	}
	v.State.PID, v.State.PIDStart = 0, 0
	v.State.APISocket, v.State.ConsoleSocket = "", ""
	v.State.SSHPort = 0
	v.State.StoppedAt = time.Now().UTC()
}
