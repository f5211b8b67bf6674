package qemu

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/vmm"
)

// testMachine is a machine booting the shared test kernel and a busybox
// rootfs whose init runs initScript.
func testMachine(t *testing.T, initScript string) vmm.Machine {
	t.Helper()
	dir := t.TempDir()
	kernel := guesttest.ExtractKernel(t, filepath.Join(dir, "k"))
	rootfs := filepath.Join(dir, "rootfs.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{Init: initScript})
	return vmm.Machine{
		Name: "t", Kernel: kernel, Rootfs: rootfs, CPUs: 1, MemoryMiB: 128,
		Dir: dir, ConsoleLog: filepath.Join(dir, "console.log"), Accel: "tcg",
		Net: vmm.Network{Mode: "none"},
	}
}

// waitConsole waits until the console log contains want, the process
// exits, or timeout passes.
func waitConsole(t *testing.T, m vmm.Machine, pid int, want string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(m.ConsoleLog)
		if strings.Contains(string(data), want) {
			return true
		}
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func waitExit(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// bootOrRetry starts m and waits for the ready marker; a TCG boot that
// hangs is killed, reported and retried once.
func bootOrRetry(t *testing.T, d *Driver, m vmm.Machine) vmm.Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := d.Start(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if waitConsole(t, m, p.PID, guesttest.ReadyMarker, 90*time.Second) {
			return p
		}
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
		// Until it is reaped: the retry boots the same disk, which a QEMU
		// still tearing down keeps locked (seconds on a loaded host).
		if !waitExit(p.PID, time.Minute) {
			t.Fatalf("QEMU %d still runs a minute after SIGKILL", p.PID)
		}
		log, _ := os.ReadFile(m.ConsoleLog)
		if attempt == 2 {
			t.Fatalf("guest never printed %q (two attempts); console:\n%s", guesttest.ReadyMarker, tail(string(log), 20))
		}
		t.Logf("REPORT: TCG boot hang or failure on attempt 1, retrying; console tail:\n%s", tail(string(log), 10))
		_ = os.Truncate(m.ConsoleLog, 0)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestBootAndShutdown boots the test kernel for real (TCG), checks QMP,
// the console socket and the log, then stops the guest with Ctrl-Alt-Del.
func TestBootAndShutdown(t *testing.T) {
	m := testMachine(t, "")
	d := &Driver{}
	p := bootOrRetry(t, d, m)
	t.Cleanup(func() { _ = syscall.Kill(p.PID, syscall.SIGKILL) })

	st, err := d.Status(context.Background(), p)
	if err != nil || st != "running" {
		t.Fatalf("status = %q, %v; want running", st, err)
	}
	log, _ := os.ReadFile(m.ConsoleLog)
	if !strings.Contains(string(log), "tsc_early_khz=") || !strings.Contains(string(log), "virtio_mmio.device=") {
		t.Errorf("kernel command line lacks tsc_early_khz or virtio_mmio devices:\n%s", tail(string(log), 200))
	}
	if _, err := os.Stat(p.ConsoleSocket); err != nil {
		t.Errorf("console socket: %v", err)
	}
	if err := d.Shutdown(context.Background(), m, p); err != nil {
		t.Fatal(err)
	}
	if !waitExit(p.PID, 60*time.Second) {
		t.Fatal("QEMU still runs 60s after Ctrl-Alt-Del")
	}
	log, _ = os.ReadFile(m.ConsoleLog)
	if !strings.Contains(string(log), "reboot: Restarting system") {
		t.Errorf("guest did not reboot on Ctrl-Alt-Del:\n%s", tail(string(log), 10))
	}
}

// TestStartFailureQuotesQEMU makes QEMU fail at startup (a forwarded port
// already taken, a real failure) and checks the error quotes QEMU.
func TestStartFailureQuotesQEMU(t *testing.T) {
	m := testMachine(t, "")
	ln, err := listenLocal()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m.Net = vmm.Network{Mode: "user", Forwards: []vmm.Forward{{HostIP: "127.0.0.1", HostPort: ln.port, GuestPort: 22}}}
	_, err = (&Driver{}).Start(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "host forwarding rule") {
		t.Fatalf("err = %v; want QEMU's host forwarding error", err)
	}
}

func TestMissingBinary(t *testing.T) {
	err := (&Driver{Binary: "qemu-system-nonexistent"}).Check()
	var nf *vmm.NotFoundError
	if !errors.As(err, &nf) || nf.Program != "qemu-system-nonexistent" || nf.Other != "firecracker" || !strings.Contains(err.Error(), "qemu-system-x86 package") {
		t.Fatalf("err = %v; want a NotFoundError naming the package, with firecracker as the other VMM", err)
	}
}

func TestQMPError(t *testing.T) {
	m := testMachine(t, "")
	d := &Driver{}
	p, err := d.Start(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(p.PID, syscall.SIGKILL) }()
	q := &QMP{Socket: p.APISocket}
	err = q.Execute(context.Background(), "no-such-command", nil, nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Fatalf("err = %v; want a CommandNotFound QMPError", err)
	}
}

func TestParseCPUMHz(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"processor\t: 0\ncpu MHz\t\t: 2445.404\n", 2445404},
		{"cpu MHz : 1000\n", 1000000},
		{"processor : 0\n", 0},
		{"cpu MHz : bogus\n", 0},
	} {
		if got := parseCPUMHz(bufio.NewScanner(strings.NewReader(tc.in))); got != tc.want {
			t.Errorf("parseCPUMHz(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
