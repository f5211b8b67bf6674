package node

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/thaloco/banger/internal/kubetest"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/vm"
)

// runNode runs a node against cp until the test ends and waits until it
// is registered.
func runNode(t testing.TB, cfg Config) {
	t.Helper()
	t.Cleanup(startNode(t, cfg))
}

// startNode runs a node and waits until it is registered; the function it
// returns stops the node.
func startNode(t testing.TB, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- Run(ctx, cfg, ready) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node.Run: %v", err)
			}
		})
	}
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("node.Run ended before the node was ready: %v", err)
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("node not ready after a minute")
	}
	return stop
}

// TestRegister: a node registers with the host's capacity, allocatable
// resources less the reserve, its labels, its taint, conditions naming
// what is missing, and a Lease.
func TestRegister(t *testing.T) {
	cp := kubetest.Start(t)
	host := Resources{CPUMilli: 4000, MemoryBytes: 16 << 30}
	runNode(t, Config{
		Name: "banger-test", Client: nodeClient(t, cp), NodeIP: "127.0.0.1", MaxPods: 20, Version: "banger-test",
		VMs: vm.NewWithOptions(paths.Layout{State: t.TempDir()}, vm.Options{}),
		Source: func(context.Context, string) (Image, error) {
			return Image{}, errors.New("no images here")
		},
		host: &host,
		checks: func() Checks {
			return Checks{Firecracker: errors.New("firecracker not found on PATH"), KVM: errors.New("cannot open /dev/kvm")}
		},
	})
	ctx := context.Background()
	n, err := cp.Client.CoreV1().Nodes().Get(ctx, "banger-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: "4", corev1.ResourceMemory: "16Gi", corev1.ResourcePods: "20"} {
		if got := n.Status.Capacity[res]; got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("capacity %s = %s, want %s", res, got.String(), want)
		}
	}
	// 16 GiB: a tenth (1.6 GiB) is more than 1 GiB.
	wantMem := int64(16<<30) - int64(16<<30)/10
	if got := n.Status.Allocatable[corev1.ResourceCPU]; got.MilliValue() != 3500 {
		t.Errorf("allocatable cpu = %s, want 3500m", got.String())
	}
	if got := n.Status.Allocatable[corev1.ResourceMemory]; got.Value() != wantMem {
		t.Errorf("allocatable memory = %d, want %d", got.Value(), wantMem)
	}
	if got := n.Labels[corev1.LabelArchStable]; got != runtime.GOARCH {
		t.Errorf("label %s = %q, want %q", corev1.LabelArchStable, got, runtime.GOARCH)
	}
	// The apiserver adds node.kubernetes.io/not-ready to a new node; a
	// cluster's node lifecycle controller takes it away once the node is
	// Ready, and there is none here.
	tainted := false
	for _, tn := range n.Spec.Taints {
		tainted = tainted || tn.MatchTaint(&Taint) && tn.Value == Taint.Value
	}
	if !tainted {
		t.Errorf("taints = %v, want %v among them", n.Spec.Taints, Taint)
	}
	want := map[corev1.NodeConditionType]corev1.ConditionStatus{
		corev1.NodeReady:                corev1.ConditionTrue,
		ConditionQEMUUnavailable:        corev1.ConditionFalse,
		ConditionFirecrackerUnavailable: corev1.ConditionTrue,
		ConditionKVMUnavailable:         corev1.ConditionTrue,
		corev1.NodeMemoryPressure:       corev1.ConditionFalse,
	}
	for _, c := range n.Status.Conditions {
		if w, ok := want[c.Type]; ok {
			if c.Status != w {
				t.Errorf("condition %s = %s (%s), want %s", c.Type, c.Status, c.Message, w)
			}
			delete(want, c.Type)
		}
	}
	if len(want) > 0 {
		t.Errorf("conditions missing: %v", want)
	}
	// The lease follows the node's registration.
	var lease *coordinationv1.Lease
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lease, err = cp.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "banger-test", metav1.GetOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node lease: %v", err)
		}
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "banger-test" {
		t.Errorf("lease holder = %v, want banger-test", lease.Spec.HolderIdentity)
	}
}

// TestRunNeedsClientCA: serving the kubelet API without the CA of the
// apiserver's client certificate would let any client exec into pods:
// Run refuses it before it contacts the cluster (the client here points
// at a port nothing listens on).
func TestRunNeedsClientCA(t *testing.T) {
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	store, source := testStore(t)
	host := Resources{CPUMilli: 1000, MemoryBytes: 1 << 30}
	cfg := Config{Name: "n", Client: client, VMs: store, Source: source, ListenAddr: freeAddr(t),
		host: &host, checks: func() Checks { return Checks{} }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Run(ctx, cfg, nil); !errors.Is(err, ErrNoClientCA) {
		t.Fatalf("Run without a client CA: %v, want ErrNoClientCA", err)
	}
}
