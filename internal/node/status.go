package node

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeStatus is the node's heartbeat: it runs the host checks again every
// interval and reports the node when a condition changed.
type nodeStatus struct {
	checks   func() Checks
	interval time.Duration
	node     *corev1.Node // owned by the NotifyNodeStatus goroutine
}

// Ping: the node is alive as long as this process is.
func (s *nodeStatus) Ping(context.Context) error { return nil }

// NotifyNodeStatus starts the check loop; cb receives the changed node.
func (s *nodeStatus) NotifyNodeStatus(ctx context.Context, cb func(*corev1.Node)) {
	go func() {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := metav1.Now()
			fresh := s.checks().conditions(now)
			if !mergeConditions(s.node, fresh, now) {
				continue
			}
			cb(s.node.DeepCopy())
		}
	}()
}

// mergeConditions sets n's conditions to fresh, keeping the transition
// time of those whose status did not change. It reports whether any
// status, reason or message changed.
func mergeConditions(n *corev1.Node, fresh []corev1.NodeCondition, now metav1.Time) bool {
	old := map[corev1.NodeConditionType]corev1.NodeCondition{}
	for _, c := range n.Status.Conditions {
		old[c.Type] = c
	}
	changed := len(old) != len(fresh)
	for i, c := range fresh {
		o, ok := old[c.Type]
		if ok && o.Status == c.Status {
			fresh[i].LastTransitionTime = o.LastTransitionTime
		}
		if !ok || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message {
			changed = true
		}
		fresh[i].LastHeartbeatTime = now
	}
	n.Status.Conditions = fresh
	return changed
}
