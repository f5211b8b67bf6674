package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/vm"
)

// watch follows the main process until the pod ends or ctx ends: each
// time the process exits, the pod's restart policy either starts it again
// (restart) or ends the pod, Succeeded or Failed with its exit status,
// and stops the VM. dir is the VM's directory.
func (p *pods) watch(ctx context.Context, r *podRun, c *ssh.Client, dir string) {
	for {
		code, ok := p.waitExit(ctx, r, c)
		if !ok {
			return
		}
		if restartsAfter(r.pod.Spec.RestartPolicy, code) {
			if !p.restart(ctx, r, c, dir, code) {
				return
			}
			continue
		}
		saveLog(ctx, c, dir)
		phase := corev1.PodSucceeded
		if code != 0 {
			phase = corev1.PodFailed
		}
		p.setStatus(r, func(s *corev1.PodStatus) {
			s.Phase = phase
			s.ContainerStatuses = terminated(r, int32(code), "", "")
			setReady(s, false)
		})
		_, _ = p.store.Stop(context.Background(), r.vm, vm.StopOptions{Timeout: 10 * time.Second})
		return
	}
}

// waitExit polls the main process until it exits and returns its exit
// status; false when ctx ended or the VM crashed (the pod is then
// Failed). The first look is at once: an adopted VM's process may have
// ended while no node watched.
func (p *pods) waitExit(ctx context.Context, r *podRun, c *ssh.Client) (int, bool) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, false
		case <-t.C:
			t.Reset(pollInterval)
		}
		var out bytes.Buffer
		code, err := guest.Run(ctx, c, "cat "+guestPodDir+"/exit 2>/dev/null", nil, &out, io.Discard)
		if err != nil {
			if ctx.Err() != nil {
				return 0, false
			}
			v, gerr := p.store.Get(r.vm)
			if gerr == nil && v.State.Status == vm.StatusCrashed {
				p.fail(r, "VMCrashed", fmt.Errorf("VM %s crashed: %s", r.vm, v.State.Reason))
				return 0, false
			}
			continue
		}
		if code != 0 {
			continue // still running
		}
		if status, err := strconv.Atoi(strings.TrimSpace(out.String())); err == nil {
			return status, true
		}
	}
}

// restart starts the main process again, in the same guest, after the
// back-off, which the pod spends Running with its container Waiting in
// CrashLoopBackOff. code is how the last run ended. It returns false when
// ctx ended or the process could not be started (the pod is then Failed).
func (p *pods) restart(ctx context.Context, r *podRun, c *ssh.Client, dir string, code int) bool {
	finished := time.Now()
	p.mu.Lock()
	rs := r.rs
	p.mu.Unlock()
	base := p.backoff
	if base == 0 {
		base = defaultBackoff
	}
	rs.Backoff = nextBackoff(rs.Backoff, base, finished.Sub(rs.StartedAt))
	rs.Last = &lastRun{ExitCode: int32(code), StartedAt: rs.StartedAt, FinishedAt: finished}
	if err := rs.save(dir); err != nil {
		p.event(r, corev1.EventTypeWarning, "RestartsNotSaved", err.Error())
	}
	ctr := r.pod.Spec.Containers[0].Name
	msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", rs.Backoff, ctr, r.pod.Name, r.pod.Namespace, r.pod.UID)
	p.setStatus(r, func(s *corev1.PodStatus) {
		r.rs = rs
		s.ContainerStatuses = containerStatuses(r, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}}, false)
		setReady(s, false)
	})
	p.event(r, corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", ctr, r.pod.Name, r.pod.Namespace, r.pod.UID))
	t := time.NewTimer(rs.Backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	rs.Count++
	rs.StartedAt = time.Now()
	if err := rs.save(dir); err != nil {
		p.event(r, corev1.EventTypeWarning, "RestartsNotSaved", err.Error())
	}
	// The exit status goes in the same command that starts the process
	// again, so that no window leaves neither a status nor a process. The
	// run that ended keeps its log as the previous one.
	again := "rm -f " + guestPodDir + "/exit && { mv -f " + guestPodDir + "/" + mainLog + " " + guestPodDir + "/" + previousLog + " 2>/dev/null || true; } && " + launchMain
	var errb bytes.Buffer
	rc, err := guest.Run(ctx, c, again, nil, io.Discard, &errb)
	if err == nil && rc != 0 {
		err = fmt.Errorf("exit status %d: %s", rc, strings.TrimSpace(errb.String()))
	}
	if err != nil {
		if ctx.Err() == nil {
			p.fail(r, "RestartFailed", fmt.Errorf("restarting the main process in VM %s: %w", r.vm, err))
		}
		return false
	}
	p.setStatus(r, func(s *corev1.PodStatus) {
		r.rs = rs
		s.ContainerStatuses = running(r)
		setReady(s, true)
	})
	return true
}

// setReady sets the pod's Ready and ContainersReady conditions.
func setReady(s *corev1.PodStatus, ready bool) {
	want := corev1.ConditionFalse
	if ready {
		want = corev1.ConditionTrue
	}
	for i := range s.Conditions {
		c := &s.Conditions[i]
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status != want {
			c.Status, c.LastTransitionTime = want, metav1.Now()
		}
	}
}

// saveLog copies the main process's logs (this run's and the previous
// one's, if any) out of the guest into the VM's directory dir, so that
// they outlive the VM.
func saveLog(ctx context.Context, c *ssh.Client, dir string) {
	for _, name := range []string{mainLog, previousLog} {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			continue
		}
		code, err := guest.Run(ctx, c, "cat "+guestPodDir+"/"+name, nil, f, io.Discard)
		_ = f.Close()
		if name == previousLog && (err != nil || code != 0) {
			_ = os.Remove(path) // a process never restarted has no previous log
		}
	}
}
