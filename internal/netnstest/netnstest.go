// Package netnstest runs a test inside a network namespace of its own, so
// that the interfaces, routes, sysctls and firewall rules it makes live
// and die with it and no packet leaves it.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Env is set in the copy of the test binary that runs inside a test
// network namespace.
const Env = "BANGER_NETSETUP_TEST_NETNS"

// Run runs the calling top-level test inside a fresh network namespace:
// outside one, it creates banger-test-<random>, re-runs this test binary in
// it for just this test, reports the result and returns false (the caller
// returns). Inside, it returns true and the test body runs there, so every
// interface, route, sysctl and firewall rule the test makes or changes lives
// and dies with that namespace, and no packet leaves it. wrap, if given, is
// a command prefix the test binary runs under inside the namespace.
func Run(t *testing.T, wrap ...string) bool {
	t.Helper()
	if ns := os.Getenv(Env); ns != "" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CI runs the tests as root)")
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "banger-test-" + hex.EncodeToString(b)
	if out, err := exec.CommandContext(t.Context(), "ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.CommandContext(context.Background(), "ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	args := append([]string{"netns", "exec", ns}, wrap...)
	args = append(args, os.Args[0],
		"-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.timeout=5m")
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.CommandContext(t.Context(), "ip", args...)
	cmd.Env = append(os.Environ(), Env+"="+ns)
	out, err := cmd.CombinedOutput()
	if testing.Verbose() || err != nil {
		t.Logf("in network namespace %s:\n%s", ns, strings.TrimRight(string(out), "\n"))
	}
	if err != nil {
		t.Fatalf("test failed inside network namespace %s: %v", ns, err)
	}
	if strings.Contains(string(out), "no tests to run") {
		t.Fatalf("test did not run inside network namespace %s", ns)
	}
	return false
}
