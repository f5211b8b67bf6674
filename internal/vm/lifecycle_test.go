package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/logtail"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// bootTimeout bounds one test boot. Under TCG a boot takes a few seconds;
// now and then one hangs, so tests retry once (startRetry).
const bootTimeout = 90 * time.Second

// startRetry starts name, retrying once when the guest was not ready in
// time (guesttest.RetryBoot).
func startRetry(t *testing.T, s *Store, name string) *VM {
	t.Helper()
	var v *VM
	err := guesttest.RetryBoot(t, "VM "+name, func() (err error) {
		v, err = s.Start(context.Background(), name, StartOptions{Timeout: bootTimeout})
		return err
	}, func(err error) bool {
		var be *BootError
		return errors.As(err, &be) && !be.Crashed
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func status(t *testing.T, s *Store, name string) *VM {
	t.Helper()
	v, err := s.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLifecycle boots a real guest (QEMU; TCG where KVM is not usable)
// with dropbear and a web server, reaches both through user networking,
// stops it gracefully, starts it again, kills its VMM and removes it.
func TestLifecycle(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	web := freeTestPort(t)
	_, err := s.Create(ctx, CreateOptions{Name: "life", Kernel: "test", Rootfs: shared.sshd, MemoryMiB: 256,
		Forwards: []Forward{{HostIP: "127.0.0.1", HostPort: web, GuestPort: 8080, Proto: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	v := startRetry(t, s, "life")
	if v.State.Status != StatusRunning || v.State.PID == 0 || v.State.Boot.Ready == 0 || v.State.Boot.Kernel == 0 {
		t.Fatalf("after start: %+v", v.State)
	}
	if b := v.State.Boot; b.VMM > b.Kernel || b.Kernel > b.Init || b.Init > b.Ready {
		t.Errorf("boot phases out of order: %+v", b)
	}
	if _, err := s.Start(ctx, "life", StartOptions{}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second start: %v", err)
	}

	// SSH with banger's key, exit status passed through.
	target, err := s.SSH("life")
	if err != nil {
		t.Fatal(err)
	}
	c, err := target.Connect(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code, err := guest.Run(ctx, c, "cat /proc/cmdline; hostname; exit 7", nil, &out, io.Discard)
	c.Close()
	if err != nil || code != 7 || !strings.Contains(out.String(), "life\n") || !strings.Contains(out.String(), "ip=10.0.2.15") {
		t.Fatalf("ssh: code %d, err %v, output %q", code, err, out.String())
	}
	// The -p forward reaches the guest's web server.
	body := httpGet(t, "http://127.0.0.1:"+strconv.Itoa(web)+"/srv.txt")
	if body != "hello from the guest\n" {
		t.Fatalf("forwarded port answered %q", body)
	}

	// Graceful stop: Ctrl-Alt-Del, busybox init reboots, QEMU exits.
	t0 := time.Now()
	if was, err := s.Stop(ctx, "life", StopOptions{Timeout: 60 * time.Second}); err != nil || !was {
		t.Fatalf("stop: %v, %v", was, err)
	}
	if time.Since(t0) > 50*time.Second {
		t.Errorf("graceful stop took %v: was the guest killed?", time.Since(t0))
	}
	v = status(t, s, "life")
	if v.State.Status != StatusStopped || v.State.PID != 0 || fileExists(v.Dir+"/qmp.sock") {
		t.Fatalf("after stop: %+v", v.State)
	}
	if log := logtail.ReadFrom(v.ConsoleLog(), v.State.ConsoleOffset, 1<<20); !strings.Contains(log, "reboot: Restarting system") {
		t.Errorf("the guest did not shut down by itself:\n%s", strings.Join(logtail.Lines(log, 10), "\n"))
	}

	// Start again, then kill -9 the VMM behind banger's back.
	v = startRetry(t, s, "life")
	pid := v.State.PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	v = status(t, s, "life")
	if v.State.Status != StatusCrashed || !strings.Contains(v.State.Reason, "killed") {
		t.Fatalf("after kill -9: %+v", v.State)
	}
	if fileExists(v.Dir+"/qmp.sock") || fileExists(v.Dir+"/console.sock") || v.State.PID != 0 {
		t.Fatalf("stale sockets or pid after reconcile: %+v", v.State)
	}

	// rm of a running VM needs --force and leaves no VMM behind.
	v = startRetry(t, s, "life")
	pid = v.State.PID
	if err := s.Remove(ctx, "life", false); !errors.As(err, new(*RunningError)) {
		t.Fatalf("rm without force: %v", err)
	}
	if err := s.Remove(ctx, "life", true); err != nil {
		t.Fatal(err)
	}
	if _, alive := vmmproc.StartTime(pid); alive {
		t.Fatalf("VMM %d still runs after rm --force", pid)
	}
	if got := vmsDirEntries(t, s); len(got) != 0 {
		t.Fatalf("VMs directory holds %v after rm", got)
	}
}

// TestKernelPanic boots a guest whose init dies: the start fails quoting
// the panic, and the VM is crashed with the panic as the reason.
func TestKernelPanic(t *testing.T) {
	s := newStore(t, nil)
	_, err := s.Create(context.Background(), CreateOptions{Name: "dies", Kernel: "test", Rootfs: shared.panics,
		Net: NetNone, ReadyMarker: "never printed", MemoryMiB: 256})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Start(context.Background(), "dies", StartOptions{Timeout: bootTimeout})
	var be *BootError
	if !errors.As(err, &be) || !be.Crashed || !strings.Contains(err.Error(), "Kernel panic - not syncing: Attempted to kill init!") ||
		!strings.Contains(err.Error(), "dying") {
		t.Fatalf("err = %v; want a kernel panic quoting the console", err)
	}
	v := status(t, s, "dies")
	if v.State.Status != StatusCrashed || !strings.HasPrefix(v.State.Reason, "the guest kernel panicked") || v.State.PID != 0 {
		t.Fatalf("after the panic: %+v", v.State)
	}
}

// TestStartInterrupted cancels a start while the guest boots: the VMM is
// killed and the VM is left stopped, not half-started.
func TestStartInterrupted(t *testing.T) {
	s := newStore(t, nil)
	if _, err := s.Create(context.Background(), CreateOptions{Name: "int", Kernel: "test", Rootfs: shared.plain,
		Net: NetNone, ReadyMarker: "never printed", MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var pid int
	go func() {
		// Cancel once the VMM runs.
		for ctx.Err() == nil {
			if v, err := s.open("int"); err == nil && v.State.PID != 0 {
				pid = v.State.PID
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := s.Start(ctx, "int", StartOptions{Timeout: bootTimeout})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if pid == 0 {
		t.Fatal("the VMM never started")
	}
	if _, alive := vmmproc.StartTime(pid); alive {
		t.Fatalf("VMM %d still runs after an interrupted start", pid)
	}
	v := status(t, s, "int")
	if v.State.Status != StatusStopped || v.State.Reason != "start interrupted" || v.State.PID != 0 {
		t.Fatalf("after the interrupted start: %+v", v.State)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// waitGone waits until process pid is gone as banger judges it. A killed
// QEMU counts as running while its threads tear down, which can take
// seconds, more on a loaded host: the wait is generous.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, alive := vmmproc.StartTime(pid); !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not exit within a minute", pid)
		}
	}
}

func freeTestPort(t *testing.T) int {
	t.Helper()
	p, err := freePort(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	var lastErr error
	for i := 0; i < 50; i++ {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			lastErr = errors.New(resp.Status)
		} else {
			lastErr = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

// TestStopTimeout stops a guest whose init ignores Ctrl-Alt-Del (busybox
// init with no ctrlaltdel entry in its inittab): after the timeout banger
// kills the VMM, and the VM is stopped.
func TestStopTimeout(t *testing.T) {
	s := newStore(t, nil)
	deaf := t.TempDir() + "/deaf.ext4"
	guesttest.BuildRootfs(t, deaf, guesttest.Rootfs{
		// busybox init turns the kernel's hard Ctrl-Alt-Del reboot off before
		// sysinit, so the marker means the guest will ignore it.
		Inittab: "::sysinit:/bin/echo deaf-ready\nttyS0::respawn:-/bin/sh\n"})
	if _, err := s.Create(context.Background(), CreateOptions{Name: "deaf", Kernel: "test", Rootfs: deaf,
		Net: NetNone, MemoryMiB: 256, ReadyMarker: "deaf-ready"}); err != nil {
		t.Fatal(err)
	}
	v := startRetry(t, s, "deaf")
	pid := v.State.PID
	t0 := time.Now()
	if was, err := s.Stop(context.Background(), "deaf", StopOptions{Timeout: 2 * time.Second}); err != nil || !was {
		t.Fatalf("stop: %v, %v", was, err)
	}
	if d := time.Since(t0); d < 2*time.Second {
		t.Fatalf("stop returned after %v, before the 2s timeout: did the guest shut down?", d)
	}
	if _, alive := vmmproc.StartTime(pid); alive {
		t.Fatalf("VMM %d survived the stop", pid)
	}
	if v := status(t, s, "deaf"); v.State.Status != StatusStopped || v.State.PID != 0 {
		t.Fatalf("after stop: %+v", v.State)
	}
}

// TestStopOverSSH stops a guest that ignores Ctrl-Alt-Del (as one whose
// kernel lacks the i8042 driver does) but has SSH: banger asks it to
// reboot over SSH, and the stop is graceful, well before the timeout.
func TestStopOverSSH(t *testing.T) {
	s := newStore(t, nil)
	kp := shared.ssh + "/id_ed25519.pub"
	pub, err := os.ReadFile(kp)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := t.TempDir() + "/deaf-sshd.ext4"
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: string(pub),
		Inittab: "ttyS0::respawn:-/bin/sh\n"})
	if _, err := s.Create(context.Background(), CreateOptions{Name: "deafssh", Kernel: "test", Rootfs: rootfs, MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}
	v := startRetry(t, s, "deafssh")
	var notes []string
	s.opts.Logf = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	t0 := time.Now()
	if _, err := s.Stop(context.Background(), "deafssh", StopOptions{Timeout: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 60*time.Second {
		t.Fatalf("stop took %v: the SSH reboot did not happen", d)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "asking it over SSH to reboot") {
		t.Errorf("stop notes %q, want one saying the guest was asked over SSH", notes)
	}
	if log := logtail.ReadFrom(v.ConsoleLog(), v.State.ConsoleOffset, 1<<20); !strings.Contains(log, "reboot: Restarting system") {
		t.Fatalf("the guest did not reboot:\n%s", strings.Join(logtail.Lines(log, 10), "\n"))
	}
}

// TestGuestPowerOff: a guest that powers off halts its kernel, which ends
// no microVM VMM; banger notices on its next look and ends the VMM.
func TestGuestPowerOff(t *testing.T) {
	s := newStore(t, nil)
	rootfs := t.TempDir() + "/poweroff.ext4"
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{Init: "(sleep 1; poweroff -f) &"})
	if _, err := s.Create(context.Background(), CreateOptions{Name: "off", Kernel: "test", Rootfs: rootfs,
		Net: NetNone, MemoryMiB: 256, ReadyMarker: guesttest.ReadyMarker}); err != nil {
		t.Fatal(err)
	}
	pid := startRetry(t, s, "off").State.PID
	v := waitNotRunning(t, s, "off")
	if v.State.Status != StatusStopped || v.State.Reason != "the guest shut down" {
		t.Fatalf("after the guest powered off: %+v", v.State)
	}
	if _, alive := vmmproc.StartTime(pid); alive {
		t.Fatalf("VMM %d still runs after the guest powered off", pid)
	}
}

// TestSSHRebootAfter: under TCG a guest gets longer to act on Ctrl-Alt-Del
// before banger also asks over SSH, within the stop's timeout.
func TestSSHRebootAfter(t *testing.T) {
	for _, tc := range []struct {
		accel   string
		timeout time.Duration
		want    time.Duration
	}{
		{"kvm", 2 * time.Minute, 5 * time.Second},
		{"", 30 * time.Second, 5 * time.Second},
		{"tcg", 30 * time.Second, 10 * time.Second},
		{"tcg", 6 * time.Second, 5 * time.Second},
		{"tcg", 2 * time.Minute, 30 * time.Second},
	} {
		t.Run(tc.accel+"/"+tc.timeout.String(), func(t *testing.T) {
			v := &VM{}
			v.State.Accel = tc.accel
			if got := sshRebootAfter(v, tc.timeout); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConsoleFromBoot: a FromBoot console session shows the boot's
// output from its start and then the live output, every line once,
// wherever the attach falls among the guest's lines; on a VM that
// stopped before the session, it shows that boot's output and ends.
func TestConsoleFromBoot(t *testing.T) {
	s := newStore(t, nil)
	rootfs := t.TempDir() + "/ticks.ext4"
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{Init: "(i=0; while [ $i -lt 40 ]; do echo tick-$i; i=$((i+1)); sleep 0.05; done; reboot -f) &"})
	if _, err := s.Create(context.Background(), CreateOptions{Name: "ticks", Kernel: "test", Rootfs: rootfs,
		Net: NetNone, MemoryMiB: 256, ReadyMarker: guesttest.ReadyMarker}); err != nil {
		t.Fatal(err)
	}
	startRetry(t, s, "ticks")
	check := func(what, out string) {
		t.Helper()
		// The shell's prompt may share a line with a tick.
		ticks := regexp.MustCompile(`tick-[0-9]+`).FindAllString(out, -1)
		if len(ticks) != 40 {
			t.Fatalf("%s: %d ticks, want 40 in order, each once:\n%s", what, len(ticks), out)
		}
		for i, tick := range ticks {
			if tick != fmt.Sprintf("tick-%d", i) {
				t.Fatalf("%s: line %d is %q, want tick-%d:\n%s", what, i, tick, i, out)
			}
		}
		if !strings.Contains(out, guesttest.ReadyMarker) {
			t.Errorf("%s: no ready marker, so not from the boot's start:\n%s", what, out)
		}
	}
	var live strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if detached, err := s.Console(ctx, "ticks", strings.NewReader(""), &live, ConsoleOptions{FromBoot: true}); err != nil || detached {
		t.Fatalf("console: detached %v, %v", detached, err)
	}
	check("attached while the guest wrote", live.String())

	// The guest rebooted (the VMM ended): a session now shows that boot.
	if v := waitNotRunning(t, s, "ticks"); v.State.Status != StatusStopped {
		t.Fatalf("after the guest rebooted: %+v", v.State)
	}
	var after strings.Builder
	if _, err := s.Console(ctx, "ticks", strings.NewReader(""), &after, ConsoleOptions{FromBoot: true}); err != nil {
		t.Fatalf("console of a stopped VM from its boot: %v", err)
	}
	check("attached after the VM stopped", after.String())
	if _, err := s.Console(ctx, "ticks", strings.NewReader(""), io.Discard, ConsoleOptions{}); err == nil {
		t.Error("a live-only console of a stopped VM succeeded")
	}
}

// waitNotRunning waits up to a minute for VM name to leave the running
// state, and returns it as it is then.
func waitNotRunning(t *testing.T, s *Store, name string) *VM {
	t.Helper()
	v := status(t, s, name)
	for deadline := time.Now().Add(time.Minute); v.State.Status == StatusRunning && time.Now().Before(deadline); v = status(t, s, name) {
		time.Sleep(100 * time.Millisecond)
	}
	return v
}
