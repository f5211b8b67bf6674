package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/thaloco/banger/internal/stagedir"
)

// The restart back-off is the kubelet's: the first restart waits the base
// (defaultBackoff unless pods.backoff says otherwise), each next one twice
// the last, at most maxBackoff; after a run that lasted backoffReset it
// starts over from the base.
const (
	defaultBackoff = 10 * time.Second
	maxBackoff     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

// restartsFile, in the VM's directory, holds a pod's restartState.
const restartsFile = "pod-restarts.json"

// restartState is what the node keeps about the runs of a pod's main
// process. It lives in the VM's directory on the host rather than in the
// guest's /run/banger-pod: the guest's copy would be lost when the VM
// stops and boots again (a host reboot) and could only be read with the
// guest up and answering SSH, while the VM directory is written only by
// the node that owns the pod, outlives both the node (a restarted node
// adopts the VM and reads it back) and the guest's boots, and goes away
// with the VM when the pod is deleted. The count is saved before the
// process is started again, so a node that dies in between counts that
// restart twice, never not at all.
type restartState struct {
	Count     int32     `json:"count"`
	StartedAt time.Time `json:"started_at"` // when the current run started
	// Backoff is the back-off waited before the current run (0 before
	// any restart).
	Backoff time.Duration `json:"backoff_ns"`
	Last    *lastRun      `json:"last,omitempty"`
}

// lastRun is how the previous run of the main process ended.
type lastRun struct {
	ExitCode   int32     `json:"exit_code"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// loadRestarts reads the restart state kept in VM directory dir; none (a
// first run, or a VM of an older node) is the zero state.
func loadRestarts(dir string) (restartState, error) {
	var rs restartState
	data, err := os.ReadFile(filepath.Join(dir, restartsFile))
	if os.IsNotExist(err) {
		return rs, nil
	}
	if err != nil {
		return rs, fmt.Errorf("reading the pod's restarts: %w", err)
	}
	if err := json.Unmarshal(data, &rs); err != nil {
		return restartState{}, fmt.Errorf("reading the pod's restarts from %s: %w", filepath.Join(dir, restartsFile), err)
	}
	return rs, nil
}

// save writes rs into VM directory dir atomically and durably: a temp
// file, fsync, rename, fsync of the directory.
func (rs restartState) save(dir string) error {
	path := filepath.Join(dir, restartsFile)
	data, err := json.Marshal(rs)
	if err != nil {
		return fmt.Errorf("saving the pod's restarts: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+restartsFile+"-")
	if err != nil {
		return fmt.Errorf("saving the pod's restarts: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err == nil {
		err = stagedir.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("saving the pod's restarts to %s: %w", path, err)
	}
	return nil
}

// nextBackoff is the back-off before the next restart, after one of last
// (0 if none yet) and a run that lasted ran.
func nextBackoff(last, base, ran time.Duration) time.Duration {
	if last == 0 || ran >= backoffReset {
		return base
	}
	return min(2*last, maxBackoff)
}

// restartsAfter says whether policy runs a main process that exited with
// code again. The apiserver defaults an empty policy to Always.
func restartsAfter(policy corev1.RestartPolicy, code int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}
