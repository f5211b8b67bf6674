package node

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/thaloco/banger/internal/vm"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// The kubelet API's statistics (/stats/summary, and /metrics/resource,
// which metrics-server and so kubectl top read): a pod's usage is its
// VM's on the host, the VMM process's CPU time and resident memory,
// given to its one container too; the node's is the host's.

// usageSample is one reading of a CPU time, kept to turn the next into a
// rate.
type usageSample struct {
	at  time.Time
	cpu time.Duration
}

// rates turns cumulative CPU times into usage in nanocores, from the
// reading before of the same key (a pod's UID, or "" for the node).
type rates struct {
	mu   sync.Mutex
	last map[string]usageSample
}

// nanoCores returns the rate since key's last reading, or nil on its
// first; it keeps s as the last reading.
func (r *rates) nanoCores(key string, s usageSample) *uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]usageSample{}
	}
	prev, ok := r.last[key]
	r.last[key] = s
	if !ok || !s.at.After(prev.at) || s.cpu < prev.cpu {
		return nil
	}
	n := uint64(float64(s.cpu-prev.cpu) / s.at.Sub(prev.at).Seconds())
	return &n
}

// forget drops the readings of keys not in keep (pods gone).
func (r *rates) forget(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.last {
		if k != "" && !keep[k] {
			delete(r.last, k)
		}
	}
}

// podUsage is a running pod's VM usage.
type podUsage struct {
	ref       statsv1alpha1.PodReference
	container string
	started   time.Time // the pod's start
	ctrStart  time.Time // its container's current run's start
	at        time.Time
	vmmproc.Usage
}

// hostUsage is the host's: CPU time of all its CPUs, memory in use
// (total less available) and available, and when it booted.
type hostUsage struct {
	at                time.Time
	cpu               time.Duration
	memUsed, memAvail uint64
	booted            time.Time
}

// usage reads the host's and every running pod's usage. Pods whose VM is
// not running (starting, ended) are left out, as a kubelet leaves out
// containers that do not run.
func (p *pods) usage() (hostUsage, []podUsage, error) {
	h, err := readHostUsage("/proc/stat", "/proc/meminfo")
	if err != nil {
		return hostUsage{}, nil, err
	}
	type running struct {
		ref           statsv1alpha1.PodReference
		ctr, vm       string
		started, ctr0 time.Time
	}
	var rs []running
	p.mu.Lock()
	for _, r := range p.byKey {
		s := r.pod.Status
		if s.Phase != corev1.PodRunning || len(r.pod.Spec.Containers) == 0 {
			continue
		}
		run := running{ref: statsv1alpha1.PodReference{Name: r.pod.Name, Namespace: r.pod.Namespace, UID: string(r.pod.UID)},
			ctr: r.pod.Spec.Containers[0].Name, vm: r.vm}
		if s.StartTime != nil {
			run.started = s.StartTime.Time
		}
		run.ctr0 = run.started
		if len(s.ContainerStatuses) > 0 && s.ContainerStatuses[0].State.Running != nil {
			run.ctr0 = s.ContainerStatuses[0].State.Running.StartedAt.Time
		}
		rs = append(rs, run)
	}
	p.mu.Unlock()
	var pods []podUsage
	for _, r := range rs {
		v, err := p.store.Get(r.vm)
		if err != nil || v.State.Status != vm.StatusRunning {
			continue
		}
		u, err := v.State.Process().Usage()
		if err != nil {
			continue // stopped meanwhile
		}
		pods = append(pods, podUsage{ref: r.ref, container: r.ctr, started: r.started, ctrStart: r.ctr0, at: time.Now(), Usage: u})
	}
	sort.Slice(pods, func(i, j int) bool {
		a, b := pods[i].ref, pods[j].ref
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return h, pods, nil
}

// readHostUsage reads the host's CPU time (the first line of stat, all
// but idle and iowait), boot time (btime) and memory (meminfo).
func readHostUsage(stat, meminfoPath string) (hostUsage, error) {
	h := hostUsage{at: time.Now()}
	f, err := os.Open(stat)
	if err != nil {
		return hostUsage{}, fmt.Errorf("reading the host's CPU time: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	var sawCPU, sawBoot bool
	for s.Scan() {
		fields := strings.Fields(s.Text())
		switch {
		case len(fields) >= 9 && fields[0] == "cpu":
			// user nice system idle iowait irq softirq steal (guest time
			// is in user already)
			var ticks uint64
			for i, v := range fields[1:9] {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return hostUsage{}, fmt.Errorf("%s: cpu line %q: %w", stat, s.Text(), err)
				}
				if i != 3 && i != 4 {
					ticks += n
				}
			}
			h.cpu, sawCPU = time.Duration(ticks)*(time.Second/100), true
		case len(fields) == 2 && fields[0] == "btime":
			sec, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return hostUsage{}, fmt.Errorf("%s: btime %q: %w", stat, fields[1], err)
			}
			h.booted, sawBoot = time.Unix(sec, 0), true
		}
	}
	if err := s.Err(); err != nil {
		return hostUsage{}, fmt.Errorf("reading %s: %w", stat, err)
	}
	if !sawCPU || !sawBoot {
		return hostUsage{}, fmt.Errorf("%s has no cpu or btime line", stat)
	}
	total, err := meminfo(meminfoPath, "MemTotal")
	if err != nil {
		return hostUsage{}, err
	}
	avail, err := meminfo(meminfoPath, "MemAvailable")
	if err != nil {
		return hostUsage{}, err
	}
	h.memAvail, h.memUsed = uint64(avail), uint64(max(total-avail, 0))
	return h, nil
}

// GetStatsSummary is the kubelet's /stats/summary: the host's usage as
// the node's, each running pod's VM as the pod's and its container's.
func (p provider) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	h, pods, err := p.usage()
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	sum := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{
		NodeName:  p.nodeName,
		StartTime: metav1.NewTime(h.booted),
		CPU:       cpuStats(h.at, h.cpu, p.rates.nanoCores("", usageSample{h.at, h.cpu})),
		Memory:    &statsv1alpha1.MemoryStats{Time: metav1.NewTime(h.at), AvailableBytes: &h.memAvail, UsageBytes: &h.memUsed, WorkingSetBytes: &h.memUsed},
	}}
	for _, u := range pods {
		keep[u.ref.UID] = true
		cpu := cpuStats(u.at, u.CPU, p.rates.nanoCores(u.ref.UID, usageSample{u.at, u.CPU}))
		rss := u.RSS
		mem := &statsv1alpha1.MemoryStats{Time: metav1.NewTime(u.at), UsageBytes: &rss, WorkingSetBytes: &rss, RSSBytes: &rss}
		sum.Pods = append(sum.Pods, statsv1alpha1.PodStats{
			PodRef: u.ref, StartTime: metav1.NewTime(u.started), CPU: cpu, Memory: mem,
			Containers: []statsv1alpha1.ContainerStats{{Name: u.container, StartTime: metav1.NewTime(u.ctrStart), CPU: cpu, Memory: mem}},
		})
	}
	p.rates.forget(keep)
	return sum, nil
}

func cpuStats(at time.Time, cpu time.Duration, nanoCores *uint64) *statsv1alpha1.CPUStats {
	ns := uint64(cpu.Nanoseconds())
	return &statsv1alpha1.CPUStats{Time: metav1.NewTime(at), UsageCoreNanoSeconds: &ns, UsageNanoCores: nanoCores}
}

// GetMetricsResource is the kubelet's /metrics/resource, the families
// and labels metrics-server reads: the node's, each running pod's and
// its container's CPU time and working set, and when each container
// started.
func (p provider) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	h, pods, err := p.usage()
	if err != nil {
		return nil, err
	}
	ms := func(t time.Time) *int64 { v := t.UnixMilli(); return &v }
	fam := func(name, help string, typ dto.MetricType) *dto.MetricFamily {
		return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ}
	}
	add := func(f *dto.MetricFamily, at time.Time, value float64, labels ...string) {
		m := &dto.Metric{TimestampMs: ms(at)}
		for i := 0; i+1 < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: &labels[i], Value: &labels[i+1]})
		}
		if f.GetType() == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: &value}
		} else {
			m.Gauge = &dto.Gauge{Value: &value}
		}
		f.Metric = append(f.Metric, m)
	}
	nodeCPU := fam("node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds", dto.MetricType_COUNTER)
	nodeMem := fam("node_memory_working_set_bytes", "Current working set of the node in bytes", dto.MetricType_GAUGE)
	podCPU := fam("pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds", dto.MetricType_COUNTER)
	podMem := fam("pod_memory_working_set_bytes", "Current working set of the pod in bytes", dto.MetricType_GAUGE)
	ctrCPU := fam("container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the container in core-seconds", dto.MetricType_COUNTER)
	ctrMem := fam("container_memory_working_set_bytes", "Current working set of the container in bytes", dto.MetricType_GAUGE)
	ctrStart := fam("container_start_time_seconds", "Start time of the container since unix epoch in seconds", dto.MetricType_GAUGE)
	scrapeErr := fam("scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", dto.MetricType_GAUGE)
	add(nodeCPU, h.at, h.cpu.Seconds())
	add(nodeMem, h.at, float64(h.memUsed))
	for _, u := range pods {
		add(podCPU, u.at, u.CPU.Seconds(), "namespace", u.ref.Namespace, "pod", u.ref.Name)
		add(podMem, u.at, float64(u.RSS), "namespace", u.ref.Namespace, "pod", u.ref.Name)
		add(ctrCPU, u.at, u.CPU.Seconds(), "container", u.container, "namespace", u.ref.Namespace, "pod", u.ref.Name)
		add(ctrMem, u.at, float64(u.RSS), "container", u.container, "namespace", u.ref.Namespace, "pod", u.ref.Name)
		add(ctrStart, u.at, float64(u.ctrStart.Unix()), "container", u.container, "namespace", u.ref.Namespace, "pod", u.ref.Name)
	}
	zero := 0.0
	scrapeErr.Metric = []*dto.Metric{{Gauge: &dto.Gauge{Value: &zero}}}
	return []*dto.MetricFamily{ctrCPU, ctrMem, ctrStart, nodeCPU, nodeMem, podCPU, podMem, scrapeErr}, nil
}
