package node

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAllocatable(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name     string
		host     Resources
		cpu, mem int64
	}{
		{"small host keeps 1 GiB", Resources{2000, 4 * gib}, 1500, 3 * gib},
		{"large host keeps a tenth", Resources{64000, 100 * gib}, 63500, 90 * gib},
		{"tiny host never negative", Resources{0, gib / 2}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.host.Allocatable()
			if got.CPUMilli != tc.cpu || got.MemoryBytes != tc.mem {
				t.Errorf("Allocatable() = %+v, want {%d %d}", got, tc.cpu, tc.mem)
			}
		})
	}
}

func TestMemTotal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(p, []byte("MemTotal:       24589284 kB\nMemFree:         1000 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := memTotal(p)
	if err != nil || got != 24589284*1024 {
		t.Errorf("memTotal = %d, %v; want %d", got, err, 24589284*1024)
	}
	if err := os.WriteFile(p, []byte("MemFree: 1 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := memTotal(p); err == nil {
		t.Error("memTotal without MemTotal: no error")
	}
	if _, err := HostResources(); err != nil {
		t.Errorf("HostResources: %v", err)
	}
	if avail, err := MemAvailable(); err != nil || avail <= 0 {
		t.Errorf("MemAvailable = %d, %v; want this host's", avail, err)
	}
}

func status(cs []corev1.NodeCondition, typ corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range cs {
		if c.Type == typ {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// TestConditions: without any VMM the node is not Ready, and says why;
// QEMU without KVM is Ready.
func TestConditions(t *testing.T) {
	missing := errors.New("not found")
	now := metav1.Now()
	none := Checks{QEMU: missing, Firecracker: missing, KVM: missing}.conditions(now)
	if c := status(none, corev1.NodeReady); c.Status != corev1.ConditionFalse || c.Reason != "NoVMM" {
		t.Errorf("no VMM: Ready = %s/%s, want False/NoVMM", c.Status, c.Reason)
	}
	if c := status(none, ConditionQEMUUnavailable); c.Status != corev1.ConditionTrue || c.Message != "not found" {
		t.Errorf("no VMM: QEMUUnavailable = %s %q", c.Status, c.Message)
	}
	tcg := Checks{Firecracker: missing, KVM: missing}.conditions(now)
	if c := status(tcg, corev1.NodeReady); c.Status != corev1.ConditionTrue {
		t.Errorf("QEMU without KVM: Ready = %s, want True", c.Status)
	}
}

// TestMergeConditions: a check that changes is reported and moves its
// transition time; one that does not keeps it.
func TestMergeConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	n := &corev1.Node{}
	n.Status.Conditions = Checks{KVM: errors.New("no kvm")}.conditions(t0)
	if mergeConditions(n, Checks{KVM: errors.New("no kvm")}.conditions(t1), t1) {
		t.Error("unchanged checks reported as a change")
	}
	if c := status(n.Status.Conditions, ConditionKVMUnavailable); !c.LastTransitionTime.Equal(&t0) || !c.LastHeartbeatTime.Equal(&t1) {
		t.Errorf("unchanged KVM condition: transition %v heartbeat %v", c.LastTransitionTime, c.LastHeartbeatTime)
	}
	if !mergeConditions(n, Checks{}.conditions(t1), t1) {
		t.Error("KVM becoming usable not reported")
	}
	if c := status(n.Status.Conditions, ConditionKVMUnavailable); c.Status != corev1.ConditionFalse || !c.LastTransitionTime.Equal(&t1) {
		t.Errorf("KVM condition after change: %s at %v", c.Status, c.LastTransitionTime)
	}
}
