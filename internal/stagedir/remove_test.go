package stagedir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// unprivilegedDirEnv carries, to a copy of this test re-run as an
// unprivileged user, the directory it may work in.
const unprivilegedDirEnv = "STAGEDIR_TEST_UNPRIVILEGED_DIR"

// Rootless image builds leave read-only directories, which os.RemoveAll
// cannot empty without privileges. Root ignores modes, so as root the test
// re-runs itself as uid 65534 to meet the failure for real.
func TestRemovesReadOnlyTreesUnprivileged(t *testing.T) {
	if dir := os.Getenv(unprivilegedDirEnv); dir != "" {
		checkRemovesReadOnlyTrees(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		checkRemovesReadOnlyTrees(t, t.TempDir())
		return
	}
	dir, err := os.MkdirTemp("", "stagedir-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// /proc/self/exe: the test binary, reachable even if its directory
	// is private to root.
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestRemovesReadOnlyTreesUnprivileged$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), unprivilegedDirEnv+"="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test run as uid 65534 (in %s; it must be reachable by other users) failed: %v\n%s", dir, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestRemovesReadOnlyTreesUnprivileged") {
		t.Fatalf("the test run as uid 65534 did not pass:\n%s", out)
	}
}

// readOnlyTree puts into dir a non-empty 0555 directory holding a
// non-empty 0000 one.
func readOnlyTree(t *testing.T, dir string) {
	t.Helper()
	ro := filepath.Join(dir, "usr", "ro")
	locked := filepath.Join(ro, "locked")
	if err := os.MkdirAll(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(ro, "f"), "x")
	write(t, filepath.Join(locked, "f"), "x")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
}

func checkRemovesReadOnlyTrees(t *testing.T, parent string) {
	probe := filepath.Join(parent, "probe")
	readOnlyTree(t, probe)
	if os.RemoveAll(probe) == nil {
		t.Fatal("os.RemoveAll removed a read-only directory: this test must run without privileges to mean anything")
	}
	if err := RemoveAll(probe); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if _, err := os.Lstat(probe); !os.IsNotExist(err) {
		t.Fatalf("RemoveAll left %s: %v", probe, err)
	}

	publish := func(replace bool) {
		t.Helper()
		tmp, err := Create(parent, "k")
		if err != nil {
			t.Fatal(err)
		}
		readOnlyTree(t, tmp)
		if err := Publish(parent, tmp, "k", replace); err != nil {
			t.Fatal(err)
		}
	}
	publish(false)
	publish(true) // the replaced tree is read-only too
	if got := entries(t, parent); len(got) != 1 || got[0] != "k" {
		t.Fatalf("after a replacing publish the parent holds %v, want only k", got)
	}

	for _, prefix := range []string{".tmp-", ".old-"} {
		readOnlyTree(t, filepath.Join(parent, prefix+"k-0123456789ab"))
	}
	CleanLeftovers(parent, "k")
	if got := entries(t, parent); len(got) != 1 || got[0] != "k" {
		t.Fatalf("after CleanLeftovers the parent holds %v, want only k", got)
	}

	if err := Remove(parent, "k"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := entries(t, parent); len(got) != 0 {
		t.Fatalf("after Remove the parent holds %v", got)
	}
}
