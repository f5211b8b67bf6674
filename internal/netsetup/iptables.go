package netsetup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
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

// rulesFor lists the rules lease l needs, FORWARD rules in the order they
// must appear: the VM's own /30 may leave through uplink (where it is
// masqueraded), replies come back in, and everything else from or to the
// tap is dropped: other VMs' taps, other interfaces, spoofed sources, and
// connections opened from outside. Without an uplink the VM reaches only
// the host (INPUT, which banger leaves alone). Arguments are in the order
// "iptables -S" prints them, so the rules read back compare equal.
func rulesFor(l Lease, uplink string) []rule {
	tagged := func(match []string, target string) []string {
		return append(match, "-m", "comment", "--comment", l.tag(), "-j", target)
	}
	var rs []rule
	if uplink != "" {
		rs = append(rs, rule{"filter", "FORWARD", tagged([]string{"-s", l.Subnet.String(), "-i", l.Tap, "-o", uplink}, "ACCEPT")})
	}
	rs = append(rs,
		rule{"filter", "FORWARD", tagged([]string{"-o", l.Tap, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"}, "ACCEPT")},
		rule{"filter", "FORWARD", tagged([]string{"-i", l.Tap}, "DROP")},
		rule{"filter", "FORWARD", tagged([]string{"-o", l.Tap}, "DROP")},
	)
	if uplink != "" {
		rs = append(rs, rule{"nat", "POSTROUTING", tagged([]string{"-s", l.Subnet.String(), "-o", uplink}, "MASQUERADE")})
	}
	return rs
}

// chains are the chains banger adds rules to.
var chains = []struct{ table, chain string }{{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}

// syncRules makes the rules carrying l's tag as their comment exactly
// want, and touches no other rule. A chain whose tagged rules already are want, in
// order, is left as it is (so a repeated Setup changes nothing);
// otherwise its tagged rules are replaced: FORWARD rules go first in the
// chain, in want's order, so that a DROP rule or policy further down (as
// Docker's) cannot shadow them; nat rules are appended.
func (t tools) syncRules(ctx context.Context, l Lease, want []rule) error {
	for _, c := range chains {
		var w [][]string
		for _, r := range want {
			if r.table == c.table && r.chain == c.chain {
				w = append(w, r.args)
			}
		}
		have, err := t.taggedRules(ctx, c.table, c.chain, l.tag())
		if err != nil {
			return err
		}
		if slices.EqualFunc(have, w, slices.Equal) {
			continue
		}
		for _, args := range have {
			if _, err := t.iptables(ctx, append([]string{"-t", c.table, "-D", c.chain}, args...)...); err != nil {
				return fmt.Errorf("removing firewall rule of VM %q: %w", l.VM, err)
			}
		}
		for i := range w {
			cmd := []string{"-t", c.table, "-A", c.chain}
			if c.chain == "FORWARD" {
				cmd = []string{"-t", c.table, "-I", c.chain, strconv.Itoa(i + 1)}
			}
			if _, err := t.iptables(ctx, append(cmd, w[i]...)...); err != nil {
				return fmt.Errorf("adding firewall rule of VM %q: %w", l.VM, err)
			}
		}
	}
	return nil
}

// deleteRules removes every rule carrying l's tag, and nothing else.
func (t tools) deleteRules(ctx context.Context, l Lease) error {
	return t.syncRules(ctx, l, nil)
}

// taggedRules lists, in chain order, the arguments of the rules of chain
// whose comment is exactly want.
func (t tools) taggedRules(ctx context.Context, table, chain, want string) ([][]string, error) {
	out, err := t.iptables(ctx, "-t", table, "-S", chain)
	if err != nil {
		return nil, fmt.Errorf("listing firewall rules: %w", err)
	}
	var rules [][]string
	for _, line := range strings.Split(out, "\n") {
		if args, ok := ruleWithComment(line, chain, want); ok {
			rules = append(rules, args)
		}
	}
	return rules, nil
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
