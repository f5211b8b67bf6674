package cli

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/imagebuild/imagetest"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// TestVMScripts runs the vm command scripts. They boot real guests with
// QEMU (TCG where KVM is not usable): the shared test kernel, installed
// once as "test" in a kernels directory every script uses
// (BANGER_KERNELS_DIR), and busybox root filesystems built once:
//
//	$ROOTFS_PLAIN  busybox, prints "banger-test: ready" on its console
//	$ROOTFS_SSHD   the same plus dropbear trusting banger's key
//	$ROOTFS_HALT   reboots (ending QEMU) a second after its marker
//	$ROOTFS_ARM64  arm64 busybox (Debian's arm64 package), for the arm64
//	               test kernel, installed as "test-arm64"
//
// The image commands (registry, push) are there too, and pushguest
// REPO:TAG pushes an arm64 image of the $ROOTFS_ARM64 kind with dropbear
// started at boot, made from Debian's arm64 packages.
//
// Each script gets the same SSH key pair in its state directory, a TCP
// port held busy by the test ($BUSYPORT), and $BANGER_ONLY_PATH, a PATH
// with banger but no QEMU. VMMs still running when a script ends are
// killed.
func TestVMScripts(t *testing.T) {
	dir := t.TempDir()
	kernels := filepath.Join(dir, "kernels")
	guesttest.InstallKernel(t, kernels, "test")
	guesttest.InstallKernelBundle(t, kernels, "test-arm64", guesttest.KernelARM64BundleName)
	kp, err := sshkey.Ensure(filepath.Join(dir, "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := map[string]string{
		"ROOTFS_PLAIN": filepath.Join(dir, "plain.ext4"),
		"ROOTFS_SSHD":  filepath.Join(dir, "sshd.ext4"),
		"ROOTFS_HALT":  filepath.Join(dir, "halt.ext4"),
		"ROOTFS_ARM64": filepath.Join(dir, "arm64.ext4"),
	}
	guesttest.BuildRootfs(t, rootfs["ROOTFS_PLAIN"], guesttest.Rootfs{})
	guesttest.BuildRootfs(t, rootfs["ROOTFS_SSHD"], guesttest.Rootfs{AuthorizedKey: kp.Public})
	guesttest.BuildRootfs(t, rootfs["ROOTFS_HALT"], guesttest.Rootfs{Init: "(sleep 1; reboot -f) &"})
	guesttest.BuildRootfs(t, rootfs["ROOTFS_ARM64"], guesttest.Rootfs{Arch: "arm64"})

	cmds := imageScriptCmds()
	cmds["bangerboot"] = cmdBangerBoot
	cmds["killvmm"] = cmdKillVMM
	cmds["pushguest"] = pushGuestCmd(t, "arm64")
	p := scriptParams(t, "vm_*.txtar", cmds)
	base := p.Setup
	p.Setup = func(env *testscript.Env) error {
		if err := base(env); err != nil {
			return err
		}
		env.Setenv("BANGER_KERNELS_DIR", kernels)
		for k, v := range rootfs {
			env.Setenv(k, v)
		}
		state := filepath.Join(env.WorkDir, "state", "banger")
		if err := os.CopyFS(filepath.Join(state, "ssh"), os.DirFS(filepath.Dir(kp.PrivatePath))); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		env.Setenv("BUSYPORT", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		bin, _, _ := strings.Cut(env.Getenv("PATH"), string(os.PathListSeparator))
		env.Setenv("BANGER_ONLY_PATH", bin)
		env.Defer(func() {
			ln.Close()
			killScriptVMMs(filepath.Join(state, "vms"))
		})
		return nil
	}
	testscript.Run(t, p)
}

// bangerboot [-code N] ARGS... runs banger ARGS (a command that boots a
// guest) and expects exit status N (default 0). A boot that was not ready
// in time (TCG hangs now and then) is reported and retried once.
func cmdBangerBoot(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("use bangerboot -code N instead of !")
	}
	want := 0
	if len(args) > 1 && args[0] == "-code" {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			ts.Fatalf("bad -code %q", args[1])
		}
		want, args = n, args[2:]
	}
	err := ts.Exec("banger", args...)
	if err != nil && strings.Contains(ts.ReadFile("stderr"), "was not ready after") {
		ts.Logf("REPORT: guest boot not ready in time, retrying once")
		err = ts.Exec("banger", args...)
	}
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("banger %s: %v", strings.Join(args, " "), err)
	}
	if got != want {
		ts.Fatalf("banger %s: exit status %d, want %d", strings.Join(args, " "), got, want)
	}
}

// killvmm NAME kills the VM's VMM with SIGKILL behind banger's back and
// waits until it is gone.
func cmdKillVMM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: killvmm NAME")
	}
	var st struct {
		PID int `json:"pid"`
	}
	state := ts.MkAbs(filepath.Join("state", "banger", "vms", args[0], "state.json"))
	data, err := os.ReadFile(state)
	ts.Check(err)
	ts.Check(json.Unmarshal(data, &st))
	if st.PID == 0 {
		ts.Fatalf("VM %s has no VMM pid", args[0])
	}
	ts.Check(syscall.Kill(st.PID, syscall.SIGKILL))
	// Gone as banger judges it: kill(pid, 0) also succeeds on a zombie,
	// and a QEMU whose main thread has exited still counts as running
	// while its other threads tear down, which can take seconds.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, alive := vmmproc.StartTime(st.PID); !alive {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("VMM %d of VM %s still runs a minute after SIGKILL", st.PID, args[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killScriptVMMs kills VMMs a script left running.
func killScriptVMMs(vms string) {
	states, _ := filepath.Glob(filepath.Join(vms, "*", "state.json"))
	for _, p := range states {
		var st struct {
			PID int `json:"pid"`
		}
		if data, err := os.ReadFile(p); err == nil && json.Unmarshal(data, &st) == nil && st.PID > 0 {
			// Only if the pid is still that VM's VMM (its argv names the VM's directory).
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/cmdline")
			if strings.Contains(string(cmdline), filepath.Dir(p)) {
				_ = syscall.Kill(st.PID, syscall.SIGKILL)
			}
		}
	}
}

// pushGuestCmd builds the guest image pushguest pushes: a real linux
// image for arch ("arm64", or "x86_64" with the host's busybox and
// dropbear) of one layer, dropbear started at boot, bootable once image
// build has added banger's key.
func pushGuestCmd(t *testing.T, guestArch string) func(*testscript.TestScript, bool, []string) {
	tree := guesttest.BuildTree(t, guesttest.Rootfs{Arch: guestArch, AuthorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn9x3Kk9mQ1kqOcb0w0s9bGv1CDLfl0rLhfXr1AYX0i image-owner\n"})
	layer, err := imagetest.DirLayer(tree)
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Image("linux/"+arch.GOARCH(guestArch), layer)
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: pushguest REPO:TAG")
		}
		_, err := registryOf(ts).Push(args[0], img)
		ts.Check(err)
	}
}
