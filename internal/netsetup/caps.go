package netsetup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// tools are the host programs and privileges Setup and Teardown need.
type tools struct {
	iptablesPath string // the iptables command
}

// NoCapError says Action needs CAP_NET_ADMIN, which this process lacks.
type NoCapError struct{ Action string }

func (e *NoCapError) Error() string {
	return fmt.Sprintf("%s needs root or the CAP_NET_ADMIN capability, which this process lacks", e.Action)
}

// checkHost verifies up front that this process may configure networking:
// CAP_NET_ADMIN, /dev/net/tun and iptables. The error names what is missing.
func checkHost(action string) (tools, error) {
	eff, err := effectiveCaps()
	if err != nil {
		return tools{}, fmt.Errorf("%s: checking capabilities: %w", action, err)
	}
	if eff&(1<<unix.CAP_NET_ADMIN) == 0 {
		return tools{}, &NoCapError{Action: action}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return tools{}, fmt.Errorf("%s needs /dev/net/tun: %w (hint: load the tun module with \"modprobe tun\")", action, err)
	}
	ipt, err := findIptables()
	if err != nil {
		return tools{}, fmt.Errorf("%s needs the iptables command: %w (hint: install the iptables package)", action, err)
	}
	return tools{iptablesPath: ipt}, nil
}

// effectiveCaps reads the CapEff mask of this process from /proc.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

// findIptables looks on PATH, then in the sbin directories a non-root PATH
// often lacks.
func findIptables() (string, error) {
	p, err := exec.LookPath("iptables")
	if err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/iptables", "/sbin/iptables"} {
		if _, serr := os.Stat(p); serr == nil {
			return p, nil
		}
	}
	return "", err
}
