package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/bundletest"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/imagebuild/imagetest"
	"github.com/thaloco/banger/internal/kernelcat"
	"github.com/thaloco/banger/internal/sshkey"
)

// crashEnv runs banger (bin) against a state directory of the test's
// own, with the shared test kernel installed as "test".
type crashEnv struct {
	t     *testing.T
	bin   string
	env   []string
	state string // banger's state directory
	work  string // the test's scratch directory
}

// buildBanger builds banger's command into dir, without the race
// detector this test binary may carry: the suite runs it some thousand
// times, and what it tests is the real program.
func buildBanger(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "banger")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/thaloco/banger/cmd/banger").CombinedOutput()
	if err != nil {
		t.Fatalf("go build of banger: %v\n%s", err, out)
	}
	return bin
}

func newCrashEnv(t *testing.T, bin string, extraEnv ...string) *crashEnv {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state", "banger")
	guesttest.InstallKernel(t, filepath.Join(state, "kernels"), "test")
	if _, err := sshkey.Ensure(filepath.Join(state, "ssh")); err != nil {
		t.Fatal(err)
	}
	e := &crashEnv{t: t, bin: bin, state: state, work: dir, env: append(append(os.Environ(),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"), "HOME="+filepath.Join(dir, "home"),
		"BANGER_KERNELS_DIR=", "BANGER_STATE_DIR=", "BANGER_QEMU_ACCEL="), extraEnv...)}
	t.Cleanup(func() { killScriptVMMs(filepath.Join(state, "vms")) })
	return e
}

func (e *crashEnv) command(args ...string) *exec.Cmd {
	cmd := exec.CommandContext(e.t.Context(), e.bin, args...)
	cmd.Env = e.env
	return cmd
}

// try runs banger args and returns its combined output and error.
func (e *crashEnv) try(args ...string) (string, error) {
	out, err := e.command(args...).CombinedOutput()
	return string(out), err
}

// run runs banger args and fails the test unless it succeeds; a boot not
// ready in time (TCG hangs now and then) is retried once.
func (e *crashEnv) run(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	if err != nil && strings.Contains(out, "was not ready after") {
		e.t.Logf("REPORT: guest not ready in time, retrying once: %s", out)
		out, err = e.try(args...)
	}
	if err != nil {
		e.t.Fatalf("banger %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// sshdRootfs builds a busybox + dropbear root filesystem trusting
// banger's key in this environment.
func (e *crashEnv) sshdRootfs() string {
	pub, err := os.ReadFile(filepath.Join(e.state, "ssh", "id_ed25519.pub"))
	if err != nil {
		e.t.Fatal(err)
	}
	rootfs := filepath.Join(e.work, "sshd.ext4")
	guesttest.BuildRootfs(e.t, rootfs, guesttest.Rootfs{AuthorizedKey: strings.TrimSpace(string(pub))})
	return rootfs
}

// procsOf lists the live processes (not zombies) whose command line names
// a path under dir, as pid → argv[0].
func procsOf(dir string) map[int]string {
	procs := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), dir+"/") {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			continue
		}
		procs[pid] = filepath.Base(strings.SplitN(string(cmdline), "\x00", 2)[0])
	}
	return procs
}

// vmmsOf lists the live QEMU processes whose command line names a file in
// dir.
func vmmsOf(dir string) []int {
	var pids []int
	for pid, name := range procsOf(dir) {
		if strings.HasPrefix(name, "qemu-system-") {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

type listed struct {
	Name   string `json:"name"`
	Broken string `json:"broken"`
	Status string `json:"status"`
	PID    int    `json:"pid"`
}

// list runs "banger KIND list --json".
func (e *crashEnv) list(kind string) []listed {
	e.t.Helper()
	var ls []listed
	if err := json.Unmarshal([]byte(e.run(kind, "list", "--json")), &ls); err != nil {
		e.t.Fatalf("%s list --json: %v", kind, err)
	}
	return ls
}

// invariants checks what must hold after any kill: every kernel, image,
// snapshot and VM listed is whole (none broken, no staging directory left
// once listed), and no process works under the state directory except
// the VMMs that vm list names (helpers die with banger; strays get up to
// 30s to go: a killed process's exit can take that long on a loaded host).
func (e *crashEnv) invariants() []string {
	var bad []string
	vmms := map[int]bool{}
	for _, kind := range []string{"kernel", "image", "snapshot", "vm"} {
		for _, l := range e.list(kind) {
			if l.Broken != "" {
				bad = append(bad, fmt.Sprintf("%s %s is broken: %s", kind, l.Name, l.Broken))
			}
			if l.PID != 0 {
				vmms[l.PID] = true
			}
		}
	}
	for _, sub := range []string{"kernels", "images", "snapshots", "vms"} {
		if left, _ := filepath.Glob(filepath.Join(e.state, sub, ".tmp-*")); len(left) != 0 {
			bad = append(bad, fmt.Sprintf("staging left after listing: %v", left))
		}
	}
	var strays []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		strays = strays[:0]
		for pid, name := range procsOf(e.state) {
			if !vmms[pid] {
				strays = append(strays, fmt.Sprintf("%s (%d)", name, pid))
			}
		}
		if len(strays) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(strays) != 0 {
		bad = append(bad, fmt.Sprintf("processes nobody tracks: %v", strays))
	}
	return bad
}

// crashCase is one command of the crash suite.
type crashCase struct {
	name string
	// setup prepares what every run needs, once.
	setup func(e *crashEnv)
	// prepare brings the state to where the command starts from and
	// returns the command's arguments.
	prepare func(e *crashEnv) []string
	// next is the next run after a kill: it must succeed (or find the
	// killed run's result complete); it returns violations.
	next func(e *crashEnv) []string
}

// crashKills is how many times each command is killed.
const crashKills = 20

// TestCrashSuite kills each command with SIGKILL at crashKills points
// spread over its run (the duration of an uninterrupted run, measured
// first), then checks the invariants, lets the next run of the command
// succeed, and at the end removes every VM with vm rm --force and checks
// that no process is left. It prints a table: command, kills, violations.
func TestCrashSuite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs the tests as root)")
	}
	bin := buildBanger(t, t.TempDir())
	var table strings.Builder
	fmt.Fprintf(&table, "%-22s %-6s %s\n", "command", "kills", "invariant violations")
	total := 0
	for _, c := range crashCases() {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			e := newCrashEnv(t, bin)
			if c.setup != nil {
				c.setup(e)
			}
			args := c.prepare(e)
			t0 := time.Now()
			e.run(args...)
			d := time.Since(t0)
			var violations []string
			for i := range crashKills {
				args := c.prepare(e)
				cmd := e.command(args...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				at := d * time.Duration(2*i+1) / (2 * crashKills)
				time.Sleep(at)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
				var bad []string
				bad = append(bad, e.invariants()...)
				bad = append(bad, c.next(e)...)
				bad = append(bad, e.invariants()...)
				for _, b := range bad {
					violations = append(violations, fmt.Sprintf("kill at %v: %s", at.Round(time.Millisecond), b))
				}
			}
			for _, l := range e.list("vm") {
				e.run("vm", "rm", "--force", l.Name)
			}
			if p := procsOf(e.state); len(p) != 0 {
				violations = append(violations, fmt.Sprintf("after vm rm --force of every VM: processes %v", p))
			}
			if leases, _ := filepath.Glob(filepath.Join(e.state, "net", "leases", "*")); len(leases) != 0 {
				violations = append(violations, fmt.Sprintf("after vm rm --force of every VM: leases %v", leases))
			}
			for _, v := range violations {
				t.Error(v)
			}
			total += len(violations)
			fmt.Fprintf(&table, "%-22s %-6d %d   (uninterrupted run %v)\n", c.name, crashKills, len(violations), d.Round(time.Millisecond))
		})
	}
	t.Logf("SIGKILL at %d points per command:\n%s", crashKills, table.String())
	if total != 0 {
		t.Errorf("%d invariant violations", total)
	}
}

func crashCases() []crashCase {
	// ok reports err as a violation unless out says one of accept.
	ok := func(what, out string, err error, accept ...string) []string {
		if err == nil {
			return nil
		}
		for _, a := range accept {
			if strings.Contains(out, a) {
				return nil
			}
		}
		return []string{fmt.Sprintf("%s: %v: %s", what, err, strings.TrimSpace(out))}
	}
	guestIs := func(e *crashEnv, name string) []string {
		out, err := e.try("vm", "ssh", name, "--", "hostname")
		if err != nil || strings.TrimSpace(out) != name {
			return []string{fmt.Sprintf("vm ssh %s -- hostname: %v: %q", name, err, out)}
		}
		return nil
	}
	withImage := func(e *crashEnv) {
		e.run("image", "register", "--name", "tiny", "--rootfs", e.sshdRootfs(), "--kernel-ref", "test")
	}
	return []crashCase{{
		name: "kernel pull",
		setup: func(e *crashEnv) {
			// A bundle with a modules/ tree, throttled so the pull takes a
			// while, served on 127.0.0.1 through a catalog of its own.
			entries := []bundletest.Entry{{Name: "vmlinux", Body: bundletest.FakeVMLinux("6.12.9", 1<<20), Mode: 0o755}}
			for i := range 300 {
				entries = append(entries, bundletest.Entry{Name: fmt.Sprintf("modules/6.12.9/m%03d.ko", i), Body: strings.Repeat("k", 2048)})
			}
			b := bundletest.Build(entries...)
			dir := filepath.Join(e.work, "srv")
			file := kernelcat.TarballName("kp-6.12", "x86_64")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				e.t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
				e.t.Fatal(err)
			}
			srv := bundletest.Serve(dir, bundletest.Faults{BytesPerSecond: int64(len(b))})
			e.t.Cleanup(srv.Close)
			cat := fmt.Sprintf(`{"version":1,"entries":[{"name":"kp-6.12","distro":"test","arch":"x86_64","kernel_version":"6.12.9","description":"crash test","url":%q,"sha256":%q,"size":%d}]}`,
				srv.URL+"/"+file, bundletest.SHA256(b), len(b))
			path := filepath.Join(e.work, "catalog.json")
			if err := os.WriteFile(path, []byte(cat), 0o644); err != nil {
				e.t.Fatal(err)
			}
			e.env = append(e.env, "BANGER_CATALOG="+path)
		},
		prepare: func(e *crashEnv) []string {
			_, _ = e.try("kernel", "rm", "--force", "kp-6.12")
			return []string{"kernel", "pull", "kp-6.12"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("kernel", "pull", "kp-6.12")
			bad := ok("kernel pull", out, err, "already installed")
			out, err = e.try("kernel", "verify", "kp-6.12")
			return append(bad, ok("kernel verify", out, err)...)
		},
	}, {
		name: "kernel import",
		setup: func(e *crashEnv) {
			dir := filepath.Join(e.work, "kdir", "modules", "6.12.1")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				e.t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(e.work, "kdir", "vmlinux"), []byte(bundletest.FakeVMLinux("6.12.1", 8<<20)), 0o755); err != nil {
				e.t.Fatal(err)
			}
			for i := range 2000 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%04d.ko", i)), []byte("module"), 0o644); err != nil {
					e.t.Fatal(err)
				}
			}
		},
		prepare: func(e *crashEnv) []string {
			return []string{"kernel", "import", "ki", "--from", filepath.Join(e.work, "kdir"), "--distro", "d", "--arch", "x86_64", "--force"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("kernel", "import", "ki", "--from", filepath.Join(e.work, "kdir"), "--distro", "d", "--arch", "x86_64", "--force")
			bad := ok("kernel import", out, err)
			out, err = e.try("kernel", "verify", "ki")
			return append(bad, ok("kernel verify", out, err)...)
		},
	}, {
		name: "image register",
		setup: func(e *crashEnv) {
			guesttest.BuildRootfs(e.t, filepath.Join(e.work, "big.ext4"), guesttest.Rootfs{SizeMiB: 256})
		},
		prepare: func(e *crashEnv) []string {
			return []string{"image", "register", "--name", "ir", "--rootfs", filepath.Join(e.work, "big.ext4"), "--kernel-ref", "test", "--force"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("image", "register", "--name", "ir", "--rootfs", filepath.Join(e.work, "big.ext4"), "--kernel-ref", "test", "--force")
			bad := ok("image register", out, err)
			out, err = e.try("image", "verify", "ir")
			return append(bad, ok("image verify", out, err)...)
		},
	}, {
		name: "image build",
		setup: func(e *crashEnv) {
			reg := imagetest.NewRegistry()
			e.t.Cleanup(reg.Close)
			if _, err := reg.Push("test/rich:v1", imagetest.Rich()); err != nil {
				e.t.Fatal(err)
			}
			e.env = append(e.env, "CRASH_IMAGE="+reg.Host+"/test/rich:v1")
		},
		prepare: func(e *crashEnv) []string {
			// Without its cache, so every kill lands in a real build.
			if err := os.RemoveAll(filepath.Join(e.state, "cache")); err != nil {
				e.t.Fatal(err)
			}
			return []string{"image", "build", "--from-image", envOf(e, "CRASH_IMAGE"), "--name", "ib", "--kernel-ref", "test", "--force"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("image", "build", "--from-image", envOf(e, "CRASH_IMAGE"), "--name", "ib", "--kernel-ref", "test", "--force")
			bad := ok("image build", out, err)
			out, err = e.try("image", "verify", "ib")
			return append(bad, ok("image verify", out, err)...)
		},
	}, {
		name:  "vm create",
		setup: withImage,
		prepare: func(e *crashEnv) []string {
			_, _ = e.try("vm", "rm", "--force", "vc")
			return []string{"vm", "create", "vc", "--image", "tiny", "--cold", "--disk-size", "256M"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("vm", "create", "vc", "--image", "tiny", "--cold", "--disk-size", "256M")
			return ok("vm create", out, err, "already exists")
		},
	}, {
		name: "vm start",
		setup: func(e *crashEnv) {
			withImage(e)
			e.run("vm", "create", "vs", "--image", "tiny", "--cold", "--memory", "256M")
		},
		prepare: func(e *crashEnv) []string {
			_, _ = e.try("vm", "stop", "--force", "vs")
			return []string{"vm", "start", "vs"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("vm", "start", "vs")
			if bad := ok("vm start", out, err, "already running"); bad != nil {
				return bad
			}
			return guestIs(e, "vs")
		},
	}, {
		name: "vm stop",
		setup: func(e *crashEnv) {
			withImage(e)
			e.run("vm", "create", "vt", "--image", "tiny", "--cold", "--memory", "256M")
		},
		prepare: func(e *crashEnv) []string {
			if out, err := e.try("vm", "start", "vt"); err != nil && !strings.Contains(out, "already running") {
				e.run("vm", "start", "vt")
			}
			return []string{"vm", "stop", "vt"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("vm", "stop", "vt")
			bad := ok("vm stop", out, err)
			if p := vmmsOf(filepath.Join(e.state, "vms", "vt")); len(p) != 0 {
				bad = append(bad, fmt.Sprintf("QEMU %v still runs after vm stop", p))
			}
			return bad
		},
	}, {
		name:  "vm rm",
		setup: withImage,
		prepare: func(e *crashEnv) []string {
			if _, err := e.try("vm", "show", "vr"); err != nil {
				e.run("vm", "create", "vr", "--image", "tiny", "--cold", "--memory", "256M")
			}
			if out, err := e.try("vm", "start", "vr"); err != nil && !strings.Contains(out, "already running") {
				e.run("vm", "start", "vr")
			}
			return []string{"vm", "rm", "--force", "vr"}
		},
		next: func(e *crashEnv) []string {
			out, err := e.try("vm", "rm", "--force", "vr")
			bad := ok("vm rm", out, err, "not found")
			if p := vmmsOf(filepath.Join(e.state, "vms")); len(p) != 0 {
				bad = append(bad, fmt.Sprintf("QEMU %v still runs after vm rm --force", p))
			}
			return bad
		},
	}, {
		name: "vm snapshot",
		setup: func(e *crashEnv) {
			withImage(e)
			e.run("vm", "create", "src", "--image", "tiny", "--cold", "--memory", "256M")
			e.run("vm", "start", "src")
		},
		prepare: func(e *crashEnv) []string {
			_, _ = e.try("snapshot", "rm", "--force", "s1")
			return []string{"vm", "snapshot", "src", "s1"}
		},
		next: func(e *crashEnv) []string {
			// vm start resumes a guest the kill left paused, and says
			// "already running" of one that runs.
			out, err := e.try("vm", "start", "src")
			bad := ok("vm start of the source", out, err, "already running")
			bad = append(bad, guestIs(e, "src")...)
			out, err = e.try("vm", "snapshot", "src", "s1")
			return append(bad, ok("vm snapshot", out, err, "already exists")...)
		},
	}, {
		name: "vm start (restore)",
		setup: func(e *crashEnv) {
			withImage(e)
			e.run("vm", "create", "src", "--image", "tiny", "--cold", "--memory", "256M")
			e.run("vm", "start", "src")
			e.run("vm", "snapshot", "src", "s1", "--stop")
		},
		prepare: func(e *crashEnv) []string {
			_, _ = e.try("vm", "rm", "--force", "k")
			e.run("vm", "create", "k", "--snapshot", "s1")
			return []string{"vm", "start", "k"}
		},
		next: func(e *crashEnv) []string {
			var v listed
			if err := json.Unmarshal([]byte(e.run("vm", "show", "k", "--json")), &v); err != nil {
				return []string{err.Error()}
			}
			pids := vmmsOf(filepath.Join(e.state, "vms", "k"))
			switch {
			case v.Status == "running" && (len(pids) != 1 || pids[0] != v.PID):
				return []string{fmt.Sprintf("running with pid %d but VMMs %v", v.PID, pids)}
			case v.Status != "running" && len(pids) != 0:
				return []string{fmt.Sprintf("%s with VMMs %v", v.Status, pids)}
			}
			out, err := e.try("vm", "start", "k")
			if bad := ok("vm start", out, err, "already running"); bad != nil {
				return bad
			}
			return guestIs(e, "k")
		},
	}}
}

// envOf is the value of key in e's environment.
func envOf(e *crashEnv, key string) string {
	for _, kv := range slices.Backward(e.env) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
