package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guesttest"
)

// pkgTmp is a directory shared by every test of the package (the banger
// binary and the kernel build output), removed by TestMain.
var pkgTmp string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "banger-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	pkgTmp = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root: the parent of this package's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repo root %s has no go.mod: %v", root, err)
	}
	return root
}

// sharedDir is $BANGER_SHARED_DIR, else shared/ beside the repo.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BANGER_SHARED_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "reference", "firecracker")); err != nil {
		t.Fatalf("shared directory %s not found: %v (hint: set BANGER_SHARED_DIR)", dir, err)
	}
	return dir
}

var (
	bangerOnce sync.Once
	bangerPath string
	bangerErr  error
)

// bangerBin builds banger from this checkout once per test binary.
func bangerBin(t *testing.T) string {
	t.Helper()
	bangerOnce.Do(func() {
		bangerPath = filepath.Join(pkgTmp, "banger")
		cmd := exec.Command("go", "build", "-o", bangerPath, "./cmd/banger")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			bangerErr = fmt.Errorf("go build ./cmd/banger: %w\n%s", err, out)
		}
	})
	if bangerErr != nil {
		t.Fatal(bangerErr)
	}
	return bangerPath
}

// cleanEnv is the process environment without the variables that steer
// banger, the build and the publish script, plus extra.
func cleanEnv(extra ...string) []string {
	drop := []string{"BANGER_STATE_DIR=", "BANGER_KERNELS_DIR=", "BANGER_CATALOG=", "BANGER_KERNEL_MIRROR=",
		"XDG_STATE_HOME=", "RCLONE_", "BASE_URL=", "CATALOG=", "PUBLISH_DIR=", "BANGER=", "OUT_DIR="}
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, d := range drop {
			if strings.HasPrefix(kv, d) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// result is what a finished command printed.
type result struct {
	stdout, stderr string
	err            error
}

// runCmd runs name with args in env and returns its output; it never fails
// the test, so callers can assert on failures too.
func runCmd(ctx context.Context, env []string, name string, args ...string) result {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{out.String(), errb.String(), err}
}

// mustRun is runCmd that fails the test when the command fails.
func mustRun(t *testing.T, ctx context.Context, env []string, name string, args ...string) result {
	t.Helper()
	r := runCmd(ctx, env, name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

// testContext is a context that ends a minute before the test deadline.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if dl, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), dl.Add(-time.Minute))
	}
	t.Cleanup(cancel)
	return ctx
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bootRetry runs a banger command that boots a guest (vm start, image
// warm) through run, once more when the guest was not ready in time
// (guesttest.RetryBoot), and fails the test if it still fails.
func bootRetry(t *testing.T, run func(args ...string) result, args ...string) result {
	t.Helper()
	var r result
	what := "banger " + strings.Join(args, " ")
	err := guesttest.RetryBoot(t, what, func() error {
		r = run(args...)
		if r.err != nil {
			return fmt.Errorf("%w\n%s", r.err, r.stderr)
		}
		return nil
	}, func(error) bool { return strings.Contains(r.stderr, "was not ready after") })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return r
}
