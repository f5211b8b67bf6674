package node

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/vm"
	"github.com/thaloco/banger/internal/vmm/firecracker"
	"github.com/thaloco/banger/internal/vmm/qemu"
)

// The reserve: what a node keeps back from the host for itself, the VMM
// processes' own overhead (QEMU's or Firecracker's threads and buffers
// beside guest memory) and the host's system. The node's allocatable
// resources, which the scheduler fits pods into, are its capacity (the
// whole host) minus the reserve.
const (
	// ReservedCPUMilli is half a CPU.
	ReservedCPUMilli = 500
	// ReservedMemoryMin is the least memory reserved: 1 GiB ...
	ReservedMemoryMin = 1 << 30
	// ReservedMemoryPercent ... or this share of the host's memory when
	// that is more.
	ReservedMemoryPercent = 10
)

// Resources are a host's CPUs and memory.
type Resources struct {
	CPUMilli    int64
	MemoryBytes int64
}

// HostResources reads this host's CPU count and total memory.
func HostResources() (Resources, error) {
	mem, err := memTotal("/proc/meminfo")
	if err != nil {
		return Resources{}, err
	}
	return Resources{CPUMilli: int64(runtime.NumCPU()) * 1000, MemoryBytes: mem}, nil
}

// Allocatable is r minus the reserve, never below zero.
func (r Resources) Allocatable() Resources {
	memReserve := max(int64(ReservedMemoryMin), r.MemoryBytes*ReservedMemoryPercent/100)
	return Resources{
		CPUMilli:    max(0, r.CPUMilli-ReservedCPUMilli),
		MemoryBytes: max(0, r.MemoryBytes-memReserve),
	}
}

// list is r as a Kubernetes resource list with room for maxPods pods.
func (r Resources) list(maxPods int) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(r.CPUMilli, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(r.MemoryBytes, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
	}
}

// memTotal is MemTotal of a /proc/meminfo file, in bytes.
func memTotal(path string) (int64, error) { return meminfo(path, "MemTotal") }

// MemAvailable is the memory this host can give new processes without
// swapping (MemAvailable of /proc/meminfo), in bytes.
func MemAvailable() (int64, error) { return meminfo("/proc/meminfo", "MemAvailable") }

// meminfo is the line key of a /proc/meminfo file, in bytes.
func meminfo(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading the host's memory: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || k != key {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s %q: %w", path, key, v, err)
		}
		return kb * 1024, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return 0, fmt.Errorf("%s has no %s line", path, key)
}

// Node condition types banger adds to the standard ones. Like
// NetworkUnavailable, True means something is wrong.
const (
	ConditionQEMUUnavailable        corev1.NodeConditionType = "QEMUUnavailable"
	ConditionFirecrackerUnavailable corev1.NodeConditionType = "FirecrackerUnavailable"
	ConditionKVMUnavailable         corev1.NodeConditionType = "KVMUnavailable"
)

// Checks are what the host can run VMs with.
type Checks struct {
	QEMU, Firecracker, KVM error // nil when usable
}

// CheckHost looks for QEMU and Firecracker on PATH and whether KVM is
// usable.
func CheckHost() Checks {
	var c Checks
	c.QEMU = (&qemu.Driver{}).CheckArch(arch.Host())
	c.Firecracker = (&firecracker.Driver{}).Check()
	if ok, why := vm.KVMUsable(); !ok {
		c.KVM = fmt.Errorf("%s", why)
	}
	return c
}

// conditions turns c into node conditions at time now: Ready unless
// neither VMM is installed (QEMU without KVM still runs guests, slowly),
// one condition per missing piece, and the usual pressures all false.
func (c Checks) conditions(now metav1.Time) []corev1.NodeCondition {
	cond := func(t corev1.NodeConditionType, st corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: st, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	missing := func(t corev1.NodeConditionType, what string, err error) corev1.NodeCondition {
		if err != nil {
			return cond(t, corev1.ConditionTrue, what+"Missing", err.Error())
		}
		return cond(t, corev1.ConditionFalse, what+"Found", what+" is usable")
	}
	ready := cond(corev1.NodeReady, corev1.ConditionTrue, "BangerReady", "banger node is ready to run pods as microVMs")
	if c.QEMU != nil && c.Firecracker != nil {
		ready = cond(corev1.NodeReady, corev1.ConditionFalse, "NoVMM", "neither QEMU nor Firecracker is installed (hint: apt-get install qemu-system-x86, or put firecracker on PATH)")
	}
	return []corev1.NodeCondition{
		ready,
		missing(ConditionQEMUUnavailable, "QEMU", c.QEMU),
		missing(ConditionFirecrackerUnavailable, "Firecracker", c.Firecracker),
		missing(ConditionKVMUnavailable, "KVM", c.KVM),
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "BangerHasSufficientMemory", "no memory pressure"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "BangerHasNoDiskPressure", "no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "BangerHasSufficientPID", "no PID pressure"),
		cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "BangerRouteCreated", "the host's network is up"),
	}
}
