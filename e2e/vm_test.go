package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// vmEnv is a banger state directory for VM tests: the test kernel is
// installed as "test", banger's key pair exists, and two busybox root
// filesystems are built: plain (no SSH server) and sshd (dropbear trusting
// banger's key).
type vmEnv struct {
	state, plain, sshd string
	env                []string
}

func newVMEnv(t *testing.T) *vmEnv {
	t.Helper()
	// A short state directory keeps the VMs' unix socket paths short.
	state, err := os.MkdirTemp("", "bg-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	e := &vmEnv{state: state, env: cleanEnv("BANGER_STATE_DIR=" + state)}
	t.Cleanup(func() {
		vmKillAll(state)
		os.RemoveAll(state)
	})
	guesttest.InstallKernel(t, filepath.Join(state, "kernels"), "test")
	kp, err := sshkey.Ensure(filepath.Join(state, "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.plain, e.sshd = filepath.Join(dir, "plain.ext4"), filepath.Join(dir, "sshd.ext4")
	guesttest.BuildRootfs(t, e.plain, guesttest.Rootfs{})
	guesttest.BuildRootfs(t, e.sshd, guesttest.Rootfs{AuthorizedKey: kp.Public})
	return e
}

// vmState reads a VM's state.json (nil if it does not exist).
func (e *vmEnv) vmState(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.state, "vms", name, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// vmKillAll kills the VMMs of the VMs under state that still run, so that
// a failing test leaves no QEMU behind.
func vmKillAll(state string) {
	files, _ := filepath.Glob(filepath.Join(state, "vms", "*", "state.json"))
	for _, f := range files {
		var st struct {
			PID int `json:"pid"`
		}
		data, _ := os.ReadFile(f)
		if json.Unmarshal(data, &st) != nil || st.PID <= 0 {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/cmdline")
		if strings.Contains(string(cmdline), filepath.Dir(f)) {
			_ = syscall.Kill(st.PID, syscall.SIGKILL)
		}
	}
}

func vmPIDAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(string(data[i+1:])), "Z")
}

// TestVMRunInterrupted sends SIGINT (Ctrl-C) to "banger vm run" while the
// guest boots: banger exits 130 and leaves neither the VM nor its VMM.
func TestVMRunInterrupted(t *testing.T) {
	e := newVMEnv(t)
	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, bangerBin(t), "vm", "run", "--name", "ctrlc", "--kernel", "test",
		"--rootfs", e.plain, "--net", "none", "--memory", "256M", "--ready-marker", "never printed")
	cmd.Env = e.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(60 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st := e.vmState(t, "ctrlc"); st != nil {
			if p, ok := st["pid"].(float64); ok {
				pid = int(p)
			}
		}
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		t.Fatalf("the VMM never started; stderr:\n%s", stderr.String())
	}
	time.Sleep(200 * time.Millisecond) // mid-boot
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("banger exited with %v, want status 130; stderr:\n%s", err, stderr.String())
	}
	if vmPIDAlive(pid) {
		t.Fatalf("VMM %d still runs after Ctrl-C", pid)
	}
	entries, _ := os.ReadDir(filepath.Join(e.state, "vms"))
	if len(entries) != 0 {
		t.Fatalf("vms directory holds %v after Ctrl-C", entries)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
	}
}

// TestVMTapNetwork boots a guest with tap networking inside a network
// namespace the test creates: banger (and so QEMU) runs in the namespace,
// the host side reaches the guest's SSH server on its own address, the
// guest reaches a web server on the host side's address, and "vm rm"
// removes the tap. No packet leaves the namespace.
func TestVMTapNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("tap networking and network namespaces need root (CI runs as root)")
	}
	e := newVMEnv(t)
	ctx := testContext(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "bg-vm-" + hex.EncodeToString(b)
	mustRun(t, ctx, nil, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		vmKillAll(e.state)
		_ = exec.Command("ip", "netns", "del", ns).Run()
	})
	mustRun(t, ctx, nil, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	banger := func(args ...string) result {
		return runCmd(ctx, e.env, "ip", append([]string{"netns", "exec", ns, bangerBin(t)}, args...)...)
	}
	must := func(args ...string) result {
		t.Helper()
		r := banger(args...)
		if r.err != nil {
			t.Fatalf("banger %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
		}
		return r
	}

	must("vm", "create", "tap1", "--net", "tap", "--kernel", "test", "--rootfs", e.sshd, "--memory", "256M")
	bootRetry(t, banger, "vm", "start", "tap1", "--timeout", "90s")
	var view struct {
		Tap, GuestAddr, HostAddr string
	}
	show := must("vm", "show", "tap1", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(show.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	view.Tap, _ = raw["tap"].(string)
	view.GuestAddr, _ = raw["guest_addr"].(string)
	view.HostAddr, _ = raw["host_addr"].(string)
	if view.Tap == "" || view.GuestAddr == "" || view.HostAddr == "" {
		t.Fatalf("vm show lacks the tap network: %s", show.stdout)
	}

	// Host side -> guest: banger's SSH goes to the guest's address.
	out := must("vm", "ssh", "tap1", "--", "ip -4 addr show eth0").stdout
	if !strings.Contains(out, "inet "+view.GuestAddr+"/30") {
		t.Fatalf("guest eth0 lacks %s/30:\n%s", view.GuestAddr, out)
	}

	// Guest -> host side: fetch a page from a web server on the host address.
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "hello.txt"), []byte("hello from the host side\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", view.HostAddr+":8088", "-h", www)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	var page string
	for i := 0; i < 20 && !strings.Contains(page, "hello from the host side"); i++ {
		time.Sleep(200 * time.Millisecond)
		page = banger("vm", "ssh", "tap1", "--", "wget -qO- http://"+view.HostAddr+":8088/hello.txt").stdout
	}
	if !strings.Contains(page, "hello from the host side") {
		t.Fatalf("the guest could not fetch from %s: %q", view.HostAddr, page)
	}

	// rm removes the VM and its tap device.
	must("vm", "rm", "--force", "tap1")
	if r := runCmd(ctx, nil, "ip", "netns", "exec", ns, "ip", "link", "show", view.Tap); r.err == nil {
		t.Fatalf("tap %s still exists after vm rm:\n%s", view.Tap, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(e.state, "vms", "tap1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("VM directory still exists after rm: %v", err)
	}
}
