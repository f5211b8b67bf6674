package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadHostUsage(t *testing.T) {
	dir := t.TempDir()
	stat, mem := filepath.Join(dir, "stat"), filepath.Join(dir, "meminfo")
	// user nice system idle iowait irq softirq steal guest guest_nice
	if err := os.WriteFile(stat, []byte("cpu  100 20 30 5000 400 5 6 7 50 0\ncpu0 1 2 3 4 5 6 7 8 9 0\nintr 1\nbtime 1700000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mem, []byte("MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:   12000000 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := readHostUsage(stat, mem)
	if err != nil {
		t.Fatal(err)
	}
	// 100+20+30+5+6+7 ticks busy (idle, iowait and guest left out).
	if h.cpu != 1680*time.Millisecond || h.memUsed != 4000000*1024 || h.memAvail != 12000000*1024 || !h.booted.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("readHostUsage = %+v; want 1.68s of CPU, 4000000 kB used, 12000000 kB available, booted at 1700000000", h)
	}
	if err := os.WriteFile(stat, []byte("intr 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readHostUsage(stat, mem); err == nil {
		t.Error("readHostUsage of a stat without a cpu line succeeded")
	}
	// The real host's, for sanity.
	if h, err := readHostUsage("/proc/stat", "/proc/meminfo"); err != nil || h.cpu <= 0 || h.memAvail == 0 || h.booted.After(time.Now()) {
		t.Errorf("readHostUsage of this host = %+v, %v", h, err)
	}
}

func TestRates(t *testing.T) {
	var r rates
	t0 := time.Now()
	if got := r.nanoCores("a", usageSample{t0, time.Second}); got != nil {
		t.Errorf("first reading's rate = %d, want none", *got)
	}
	// Half a core over two seconds.
	if got := r.nanoCores("a", usageSample{t0.Add(2 * time.Second), 2 * time.Second}); got == nil || *got != 500_000_000 {
		t.Errorf("rate = %v, want 500000000 nanocores", got)
	}
	r.forget(map[string]bool{})
	if got := r.nanoCores("a", usageSample{t0.Add(3 * time.Second), 3 * time.Second}); got != nil {
		t.Errorf("rate after the pod was forgotten = %d, want none", *got)
	}
}
