package netsetup

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// netnsEnv is set in the copy of the test binary that runs inside a test
// network namespace.
const netnsEnv = "BANGER_NETSETUP_TEST_NETNS"

// inNetns runs the calling top-level test inside a fresh network namespace:
// outside one, it creates banger-test-<random>, re-runs this test binary in
// it for just this test, reports the result and returns false (the caller
// returns). Inside, it returns true and the test body runs there, so every
// interface, route, sysctl and firewall rule the test makes or changes lives
// and dies with that namespace, and no packet leaves it. wrap, if given, is
// a command prefix the test binary runs under inside the namespace.
func inNetns(t *testing.T, wrap ...string) bool {
	t.Helper()
	if ns := os.Getenv(netnsEnv); ns != "" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CI runs the tests as root)")
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "banger-test-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
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
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns)
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

// sh runs a command inside the test's namespace and fails the test on error.
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ruleset is the full iptables state of the namespace (both tables used).
func ruleset(t *testing.T) string {
	t.Helper()
	return sh(t, "iptables", "-w", "-S") + sh(t, "iptables", "-w", "-t", "nat", "-S")
}

// bangerRules lists the rules of the namespace carrying vm's comment.
func bangerRules(t *testing.T, vm string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(ruleset(t), "\n") {
		if strings.Contains(line, `--comment "banger:`+vm+`"`) || strings.Contains(line, "--comment banger:"+vm+" ") {
			out = append(out, line)
		}
	}
	return out
}

// addUplink gives the namespace a stand-in uplink, tap up0 10.99.0.1/24,
// with the default route via 10.99.0.254, which exists only inside the
// namespace. (A tap, not a dummy: containers often lack the dummy driver.)
func addUplink(t *testing.T) {
	t.Helper()
	sh(t, "ip", "tuntap", "add", "dev", "up0", "mode", "tap")
	sh(t, "ip", "addr", "add", "10.99.0.1/24", "dev", "up0")
	sh(t, "ip", "link", "set", "up0", "up")
	sh(t, "ip", "route", "add", "default", "via", "10.99.0.254", "dev", "up0")
}
