package netsetup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/thaloco/banger/internal/childproc"
	"golang.org/x/sys/unix"
)

// rule is one iptables rule: table, chain and match/target arguments.
type rule struct {
	table, chain string
	args         []string
}

// comment is the iptables comment on every rule banger adds for vm; it is
// how Teardown finds exactly those rules.
func comment(vm string) string { return "banger:" + vm }

// rulesFor lists the rules lease l needs: accept forwarding from the tap and
// replies to it, and NAT to uplink when there is one.
func rulesFor(l Lease, uplink string) []rule {
	tagged := func(match []string, target string) []string {
		return append(match, "-m", "comment", "--comment", comment(l.VM), "-j", target)
	}
	rs := []rule{
		{"filter", "FORWARD", tagged([]string{"-i", l.Tap}, "ACCEPT")},
		{"filter", "FORWARD", tagged([]string{"-o", l.Tap, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"}, "ACCEPT")},
	}
	if uplink != "" {
		rs = append(rs, rule{"nat", "POSTROUTING", tagged([]string{"-s", l.Subnet.String(), "-o", uplink}, "MASQUERADE")})
	}
	return rs
}

// addRule adds r unless an identical rule exists. FORWARD rules go first in
// the chain so a DROP rule or policy further down cannot shadow them.
func (t tools) addRule(ctx context.Context, r rule) error {
	if _, err := t.iptables(ctx, append([]string{"-t", r.table, "-C", r.chain}, r.args...)...); err == nil {
		return nil
	}
	op := "-A"
	if r.chain == "FORWARD" {
		op = "-I"
	}
	if _, err := t.iptables(ctx, append([]string{"-t", r.table, op, r.chain}, r.args...)...); err != nil {
		return fmt.Errorf("adding firewall rule: %w", err)
	}
	return nil
}

// deleteRules removes every rule carrying vm's comment from the chains
// banger uses, except those identical to a rule in keep, and nothing else.
func (t tools) deleteRules(ctx context.Context, vm string, keep []rule) error {
	want := comment(vm)
	chains := []struct{ table, chain string }{{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}
	for _, c := range chains {
		out, err := t.iptables(ctx, "-t", c.table, "-S", c.chain)
		if err != nil {
			return fmt.Errorf("listing firewall rules: %w", err)
		}
		for _, line := range strings.Split(out, "\n") {
			args, ok := ruleWithComment(line, c.chain, want)
			if !ok || slices.ContainsFunc(keep, func(r rule) bool {
				return r.table == c.table && r.chain == c.chain && slices.Equal(r.args, args)
			}) {
				continue
			}
			if _, err := t.iptables(ctx, append([]string{"-t", c.table, "-D", c.chain}, args...)...); err != nil {
				return fmt.Errorf("removing firewall rule of VM %q: %w", vm, err)
			}
		}
	}
	return nil
}

// ruleWithComment parses one line of "iptables -S chain" output and, if it
// is a rule of chain whose comment is exactly want, returns its arguments.
// banger's own rules contain no spaces inside arguments, so splitting on
// spaces and unquoting is exact for them; other rules are never returned.
func ruleWithComment(line, chain, want string) ([]string, bool) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "-A" || f[1] != chain {
		return nil, false
	}
	args := f[2:]
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--comment" && strings.Trim(args[i+1], `"`) == want {
			args[i+1] = want
			return args, true
		}
	}
	return nil, false
}

// iptables runs the iptables command (waiting for the xtables lock) and
// returns its stdout; stderr goes into the error.
func (t tools) iptables(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"-w"}, args...)
	cmd := childproc.Command(ctx, t.iptablesPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if os.Geteuid() != 0 {
		// A non-root banger holding CAP_NET_ADMIN passes it on.
		cmd.SysProcAttr = &syscall.SysProcAttr{AmbientCaps: []uintptr{unix.CAP_NET_ADMIN}}
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
