package netsetup

import (
	"os/exec"
	"strings"
	"testing"
)

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

// bangerRules lists the rules of the namespace whose comment is tag.
func bangerRules(t *testing.T, tag string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(ruleset(t), "\n") {
		if strings.Contains(line, `--comment "`+tag+`"`) || strings.Contains(line, "--comment "+tag+" ") {
			out = append(out, line)
		}
	}
	return out
}

// tagOf and tapOf are the tag and tap name Setup gives VM vm in cfg.
func tagOf(cfg Config, vm string) string { return Lease{VM: vm, Owner: ownerID(cfg.StateDir)}.tag() }
func tapOf(cfg Config, vm string) string { return tapName(ownerID(cfg.StateDir), vm) }

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
