package firecracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/consolerelay"
)

// relayArg, as the first argument, turns this test binary into the real
// console relay (consolerelay.Main), as "banger internal console-relay".
const relayArg = "console-relay"

// TestMain turns this test binary into the fake firecracker or jailer
// (see fake_test.go) when run with $BANGER_FAKE_FIRECRACKER set, or into
// the console relay.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == relayArg {
		if err := consolerelay.Main(context.Background(), os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if cfg := os.Getenv(fakeEnv); cfg != "" {
		os.Exit(runFake(cfg, filepath.Base(os.Args[0]), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runFakeJailer checks the jailer's command line like the jailer does,
// then plays the jailed Firecracker, without chroot or privilege drop: it
// only resolves paths inside the jail and checks ownership there.
func runFakeJailer(cfg fakeConfig, args []string) int {
	cfg.record(recordEntry{Argv: args})
	flags := map[string]string{}
	i := 0
	for ; i < len(args) && args[i] != "--"; i += 2 {
		if i+1 >= len(args) || !strings.HasPrefix(args[i], "--") {
			fmt.Fprintf(os.Stderr, "jailer: bad argument %q\n", args[i])
			return 1
		}
		flags[args[i]] = args[i+1]
	}
	for _, f := range []string{"--id", "--exec-file", "--uid", "--gid"} {
		if flags[f] == "" {
			fmt.Fprintf(os.Stderr, "jailer: missing argument %s\n", f)
			return 1
		}
	}
	if i >= len(args) || !ValidJailerID(flags["--id"]) {
		fmt.Fprintln(os.Stderr, "jailer: missing -- or bad --id")
		return 1
	}
	uid, err1 := strconv.Atoi(flags["--uid"])
	gid, err2 := strconv.Atoi(flags["--gid"])
	if st, err := os.Stat(flags["--exec-file"]); err1 != nil || err2 != nil || err != nil || !st.Mode().IsRegular() {
		fmt.Fprintln(os.Stderr, "jailer: bad --uid, --gid or --exec-file")
		return 1
	}
	base := flags["--chroot-base-dir"]
	if base == "" {
		base = "/srv/jailer"
	}
	root := filepath.Join(base, filepath.Base(flags["--exec-file"]), flags["--id"], "root")
	return runFakeFirecracker(cfg, args[i+1:], &jail{root: root, uid: uid, gid: gid})
}

// sharedDir is $BANGER_SHARED_DIR, else shared/ beside the repository.
func sharedDir(t *testing.T) string {
	if d := os.Getenv("BANGER_SHARED_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory; set BANGER_SHARED_DIR")
		}
		dir = parent
	}
}

// testEnv is one test's fake Firecracker setup and machine.
type testEnv struct {
	dir   string
	cfg   fakeConfig
	m     vmm.Machine
	relay []string // Driver.ConsoleRelay running this binary as the relay
}

// newTestEnv puts the fake firecracker and jailer alone on PATH, writes its
// config, and makes a machine with real (if unbootable) kernel and disk files.
func newTestEnv(t *testing.T, cfg fakeConfig) *testEnv {
	dir := t.TempDir()
	cfg.Spec = filepath.Join(sharedDir(t), "reference", "firecracker", "firecracker-api.yaml")
	if _, err := os.Stat(cfg.Spec); err != nil {
		t.Fatalf("the fake needs Firecracker's API spec: %v", err)
	}
	cfg.Record = filepath.Join(dir, "record.jsonl")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	must(t, os.Mkdir(bin, 0o755))
	for _, name := range []string{"firecracker", "jailer"} {
		must(t, os.Symlink(exe, filepath.Join(bin, name)))
	}
	data, _ := json.Marshal(cfg)
	must(t, os.WriteFile(filepath.Join(dir, "fake.json"), data, 0o644))
	t.Setenv("PATH", bin)
	t.Setenv(fakeEnv, filepath.Join(dir, "fake.json"))

	e := &testEnv{dir: dir, cfg: cfg, relay: []string{exe, relayArg}}
	e.m = vmm.Machine{
		Name: "vm1", Kernel: e.file(t, "vmlinux", 0o644), Rootfs: e.file(t, "disk.ext4", 0o644),
		Cmdline: "quiet", CPUs: 2, MemoryMiB: 256, Net: vmm.Network{Mode: "none"},
		Dir: filepath.Join(dir, "vm1"), ConsoleLog: filepath.Join(dir, "vm1", "console.log"), Accel: "kvm",
	}
	t.Cleanup(func() { e.killFakes(t) })
	return e
}

func (e *testEnv) file(t *testing.T, name string, mode os.FileMode) string {
	p := filepath.Join(e.dir, name)
	must(t, os.WriteFile(p, []byte("not really "+name), mode))
	must(t, os.Chmod(p, mode))
	return p
}

// records reads what the fakes saw so far.
func (e *testEnv) records(t *testing.T) []recordEntry {
	data, err := os.ReadFile(e.cfg.Record)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	must(t, err)
	var rs []recordEntry
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r recordEntry
		must(t, json.Unmarshal([]byte(line), &r))
		rs = append(rs, r)
	}
	return rs
}

// pids are the fake processes this test started.
func (e *testEnv) pids(t *testing.T) []int {
	var ps []int
	for _, r := range e.records(t) {
		if r.PID != 0 {
			ps = append(ps, r.PID)
		}
	}
	return ps
}

// killFakes kills what this test started and is still running.
func (e *testEnv) killFakes(t *testing.T) {
	for _, pid := range e.pids(t) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitGone waits until pid no longer exists (it is reaped by the driver).
// The fake is this test binary, race detector and all: on a loaded host
// it can take a while to exit, so the wait is generous.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	t.Fatalf("process %d still exists a minute on", pid)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
