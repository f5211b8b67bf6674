package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/sshkey"
)

// crashEnv runs this test binary as banger (see TestMain) against a state
// directory of the test's own, with the shared test kernel installed as
// "test".
type crashEnv struct {
	t     *testing.T
	env   []string
	state string // banger's state directory
}

func newCrashEnv(t *testing.T) *crashEnv {
	t.Helper()
	dir := t.TempDir()
	kernels := filepath.Join(dir, "kernels")
	guesttest.InstallKernel(t, kernels, "test")
	state := filepath.Join(dir, "state", "banger")
	if _, err := sshkey.Ensure(filepath.Join(state, "ssh")); err != nil {
		t.Fatal(err)
	}
	e := &crashEnv{t: t, state: state, env: append(os.Environ(),
		"BANGER_TEST_MAIN=1", "XDG_STATE_HOME="+filepath.Join(dir, "state"), "HOME="+filepath.Join(dir, "home"),
		"BANGER_KERNELS_DIR="+kernels, "BANGER_QEMU_ACCEL=")}
	t.Cleanup(func() { killScriptVMMs(filepath.Join(state, "vms")) })
	return e
}

func (e *crashEnv) command(args ...string) *exec.Cmd {
	cmd := exec.CommandContext(e.t.Context(), os.Args[0], args...)
	cmd.Env = e.env
	return cmd
}

// run runs banger args and fails the test unless it succeeds; a boot not
// ready in time (TCG hangs now and then) is retried once.
func (e *crashEnv) run(args ...string) string {
	e.t.Helper()
	out, err := e.command(args...).CombinedOutput()
	if err != nil && strings.Contains(string(out), "was not ready after") {
		e.t.Logf("REPORT: guest not ready in time, retrying once: %s", out)
		out, err = e.command(args...).CombinedOutput()
	}
	if err != nil {
		e.t.Fatalf("banger %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// vmmsOf lists the live processes whose command line names a file in dir.
func vmmsOf(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(filepath.Base(strings.SplitN(string(cmdline), "\x00", 2)[0]), "qemu-system-") {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			continue // exited, not yet reaped
		}
		if strings.Contains(string(cmdline), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestRestoreKilled kills `banger vm start` of a VM created from a
// snapshot with SIGKILL at offsets spread over the restore (VMM spawn,
// state load, clone identity step), then checks the invariants: the VM
// is either running with exactly the VMM its record names or stopped with
// no VMM at all; the next start restores it and the guest is itself; and
// `vm rm --force` leaves no VMM.
func TestRestoreKilled(t *testing.T) {
	e := newCrashEnv(t)
	kp := filepath.Join(e.state, "ssh", "id_ed25519.pub")
	pub, err := os.ReadFile(kp)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(t.TempDir(), "sshd.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: strings.TrimSpace(string(pub))})
	e.run("image", "register", "--name", "tiny", "--rootfs", rootfs, "--kernel-ref", "test")
	e.run("vm", "create", "src", "--image", "tiny", "--memory", "256M", "--cold")
	e.run("vm", "start", "src")
	e.run("vm", "snapshot", "src", "s1", "--stop")

	offsets := []time.Duration{100, 150, 200, 250, 300, 400, 500, 600, 750, 900, 1100, 1400, 2000, 3000}
	var table strings.Builder
	fmt.Fprintf(&table, "%-8s %-10s %-6s %s\n", "kill at", "status", "VMMs", "violations")
	violations := 0
	for i, off := range offsets {
		off *= time.Millisecond
		name := fmt.Sprintf("k%d", i)
		e.run("vm", "create", name, "--snapshot", "s1")
		cmd := e.command("vm", "start", name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(off)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		vmDir := filepath.Join(e.state, "vms", name)
		var v struct {
			Status string `json:"status"`
			PID    int    `json:"pid"`
		}
		if err := json.Unmarshal([]byte(e.run("vm", "show", name, "--json")), &v); err != nil {
			t.Fatal(err)
		}
		pids := vmmsOf(vmDir)
		var bad []string
		switch {
		case v.Status == "running" && (len(pids) != 1 || pids[0] != v.PID):
			bad = append(bad, fmt.Sprintf("running with pid %d but VMMs %v", v.PID, pids))
		case v.Status != "running" && len(pids) != 0:
			bad = append(bad, fmt.Sprintf("%s with VMMs %v", v.Status, pids))
		}
		if v.Status != "running" {
			e.run("vm", "start", name)
		}
		if out := e.run("vm", "ssh", name, "--", "hostname"); strings.TrimSpace(out) != name {
			bad = append(bad, fmt.Sprintf("the guest calls itself %q", strings.TrimSpace(out)))
		}
		e.run("vm", "rm", "--force", name)
		if pids := vmmsOf(vmDir); len(pids) != 0 {
			bad = append(bad, fmt.Sprintf("VMMs %v left after vm rm --force", pids))
		}
		violations += len(bad)
		fmt.Fprintf(&table, "%-8v %-10s %-6d %s\n", off, v.Status, len(pids), strings.Join(bad, "; "))
	}
	t.Logf("vm start (restore) killed with SIGKILL:\n%s", table.String())
	if violations != 0 {
		t.Errorf("%d invariant violations", violations)
	}
}

// TestSnapshotKilled kills `banger vm snapshot` with SIGKILL at offsets
// spread over the save (pause, state save, memory and disk copies,
// publish), then checks: the snapshot is either listed complete or not
// at all, with no staging directory left once listed; the source VM runs
// (`vm start` resumes a guest the kill left paused) and answers; and the
// next snapshot of that name succeeds.
func TestSnapshotKilled(t *testing.T) {
	e := newCrashEnv(t)
	pub, err := os.ReadFile(filepath.Join(e.state, "ssh", "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(t.TempDir(), "sshd.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: strings.TrimSpace(string(pub))})
	e.run("vm", "create", "src", "--kernel", "test", "--rootfs", rootfs, "--memory", "256M")
	e.run("vm", "start", "src")

	offsets := []time.Duration{100, 150, 200, 250, 300, 350, 400, 500, 600, 800, 1000, 1500}
	var table strings.Builder
	fmt.Fprintf(&table, "%-8s %-10s %-8s %s\n", "kill at", "snapshot", "source", "violations")
	violations := 0
	for i, off := range offsets {
		off *= time.Millisecond
		name := fmt.Sprintf("s%d", i)
		cmd := e.command("vm", "snapshot", "src", name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(off)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		var bad []string
		var snaps []struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(e.run("snapshot", "list", "--json")), &snaps); err != nil {
			t.Fatal(err)
		}
		taken := "absent"
		for _, s := range snaps {
			if s.Name == name {
				taken = "complete"
				e.run("snapshot", "show", name) // a listed snapshot reads back whole
			}
		}
		if left, _ := filepath.Glob(filepath.Join(e.state, "snapshots", ".tmp-*")); len(left) != 0 {
			bad = append(bad, fmt.Sprintf("staging left after snapshot list: %v", left))
		}
		var v struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(e.run("vm", "show", "src", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		src := v.Status
		if v.Status != "running" {
			bad = append(bad, "source VM is "+v.Status)
		}
		// vm start resumes a guest the kill left paused, and says "already
		// running" of one that runs.
		if out, err := e.command("vm", "start", "src").CombinedOutput(); err != nil && !strings.Contains(string(out), "is already running") {
			bad = append(bad, fmt.Sprintf("vm start of the source: %v: %s", err, out))
		}
		if out := e.run("vm", "ssh", "src", "--", "echo", "alive"); strings.TrimSpace(out) != "alive" {
			bad = append(bad, fmt.Sprintf("source answered %q", out))
		}
		if taken == "absent" {
			e.run("vm", "snapshot", "src", name)
		}
		e.run("snapshot", "rm", name)
		violations += len(bad)
		fmt.Fprintf(&table, "%-8v %-10s %-8s %s\n", off, taken, src, strings.Join(bad, "; "))
	}
	t.Logf("vm snapshot killed with SIGKILL:\n%s", table.String())
	if violations != 0 {
		t.Errorf("%d invariant violations", violations)
	}
}
