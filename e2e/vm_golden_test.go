package e2e

import (
	"encoding/json"
	"strconv"
	"time"

	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVMGoldenImage boots the golden image (Debian bookworm with systemd
// and OpenSSH, built by scripts/build-golden.sh from images/golden) on the
// generic-6.12 kernel (scripts/make-generic-kernel.sh), both cached by
// input hash, and reaches it over SSH with banger's key: the end-to-end
// path a user takes. Stopping it is graceful: systemd turns Ctrl-Alt-Del
// into a reboot, which ends QEMU.
func TestVMGoldenImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("building the golden image needs root (CI runs as root)")
	}
	ctx := testContext(t)
	state, err := os.MkdirTemp("", "bg-golden-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vmKillAll(state)
		os.RemoveAll(state)
	})
	env := cleanEnv("BANGER_STATE_DIR="+state, "BANGER="+bangerBin(t))
	banger := func(args ...string) result { return runCmd(ctx, env, bangerBin(t), args...) }
	must := func(args ...string) result {
		t.Helper()
		return mustRun(t, ctx, env, bangerBin(t), args...)
	}

	must("kernel", "import", "generic-6.12", "--from", genericKernel(t), "--distro", "generic", "--arch", "x86_64")
	r := mustRun(t, ctx, env, filepath.Join(repoRoot(t), "scripts", "build-golden.sh"))
	t.Logf("build-golden.sh:\n%s", r.stderr)

	must("vm", "create", "gold", "--image", "golden", "--memory", "1G")
	r = bootRetry(t, banger, "vm", "start", "gold", "--timing", "--timeout", "6m")
	t.Logf("vm start: %s", r.stdout)
	if !strings.Contains(r.stdout, `"banger vm ssh gold" opens a shell`) {
		t.Errorf("the golden image was not recognized as having an SSH server:\n%s", r.stdout)
	}

	out := must("vm", "ssh", "gold", "--", ". /etc/os-release; echo os=$ID-$VERSION_ID; ip -4 -o addr show eth0; id -un").stdout
	for _, want := range []string{"os=debian-12", "10.0.2.15/24", "root"} {
		if !strings.Contains(out, want) {
			t.Errorf("guest output lacks %q:\n%s", want, out)
		}
	}
	r = banger("vm", "ssh", "gold", "--", "exit 5")
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != 5 {
		t.Errorf("vm ssh -- 'exit 5' ended with %v, want status 5", r.err)
	}

	r = must("vm", "stop", "gold", "--timeout", "2m")
	switch {
	case strings.Contains(r.stderr, "killing"):
		t.Errorf("vm stop had to kill the golden VM:\n%s", r.stderr)
	case strings.Contains(r.stderr, "over SSH"):
		// generic-6.12 delivers Ctrl-Alt-Del (TestGenericKernelCtrlAltDel):
		// the golden image's init must act on it.
		t.Errorf("the golden guest did not shut down on Ctrl-Alt-Del; vm stop fell back to SSH: %s", strings.TrimSpace(r.stderr))
	}
	log, err := os.ReadFile(filepath.Join(state, "vms", "gold", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "reboot: Restarting system") {
		t.Errorf("the guest did not shut down by itself on Ctrl-Alt-Del; console tail:\n%s", tail(string(log), 20))
	}
	must("vm", "rm", "gold")

	// Warm the golden image, then vm run restores it instead of booting.
	t0 := time.Now()
	r = bootRetry(t, banger, "image", "warm", "golden", "--timeout", "6m")
	t.Logf("image warm golden took %v: %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(r.stdout))
	t0 = time.Now()
	out = must("vm", "run", "--name", "warm1", "golden", "--", "hostname; date +%s").stdout
	t.Logf("warm vm run -- hostname took %v", time.Since(t0).Round(time.Millisecond))
	lines := strings.Fields(out)
	if len(lines) != 2 || lines[0] != "warm1" {
		t.Errorf("warm vm run printed %q, want the VM's own hostname and the time", out)
	} else if sec, _ := strconv.ParseInt(lines[1], 10, 64); sec < t0.Unix()-1 || sec > time.Now().Unix()+1 {
		t.Errorf("restored guest clock %d, host %d..%d", sec, t0.Unix(), time.Now().Unix())
	}
	var shown struct {
		Path     string `json:"path"`
		Snapshot string `json:"snapshot"`
		Identity string `json:"identity"`
	}
	if err := json.Unmarshal([]byte(must("vm", "show", "warm1", "--json").stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Path != "restore" || shown.Snapshot != "golden.warm" || !strings.Contains(shown.Identity, "reseed=ioctl") || !strings.Contains(shown.Identity, "clock=ns") {
		t.Errorf("warm VM: %+v, want a restore of golden.warm with the reseed ioctl and a nanosecond clock", shown)
	}
	must("vm", "rm", "--force", "warm1")
}
