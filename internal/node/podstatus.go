package node

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// running is r's container statuses while its main process runs. The
// status helpers read r.rs: call them under pods.mu (in setStatus).
func running(r *podRun) []corev1.ContainerStatus {
	st := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(r.rs.StartedAt)}}
	return containerStatuses(r, st, true)
}

func terminated(r *podRun, code int32, reason, msg string) []corev1.ContainerStatus {
	if reason == "" {
		reason = exitReason(code)
	}
	st := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg, FinishedAt: metav1.Now()}}
	if !r.rs.StartedAt.IsZero() {
		st.Terminated.StartedAt = metav1.NewTime(r.rs.StartedAt)
	}
	return containerStatuses(r, st, false)
}

// exitReason is the kubelet's reason for a process that exited with code.
func exitReason(code int32) string {
	if code != 0 {
		return "Error"
	}
	return "Completed"
}

func containerStatuses(r *podRun, st corev1.ContainerState, ready bool) []corev1.ContainerStatus {
	var last corev1.ContainerState
	if l := r.rs.Last; l != nil {
		last.Terminated = &corev1.ContainerStateTerminated{ExitCode: l.ExitCode, Reason: exitReason(l.ExitCode),
			StartedAt: metav1.NewTime(l.StartedAt), FinishedAt: metav1.NewTime(l.FinishedAt)}
	}
	out := make([]corev1.ContainerStatus, 0, len(r.pod.Spec.Containers))
	for _, c := range r.pod.Spec.Containers {
		out = append(out, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, State: st,
			RestartCount: r.rs.Count, LastTerminationState: last})
	}
	return out
}
