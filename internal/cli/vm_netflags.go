package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/thaloco/banger/internal/vm"
)

// hostAccessValue is --host-access: none or loopback, checked when given.
type hostAccessValue struct{ p *string }

func (v hostAccessValue) Set(s string) error {
	if s != vm.HostAccessNone && s != vm.HostAccessLoopback {
		return fmt.Errorf("not a host access mode (hint: use %s or %s)", vm.HostAccessNone, vm.HostAccessLoopback)
	}
	*v.p = s
	return nil
}

func (v hostAccessValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (hostAccessValue) Type() string { return vm.HostAccessNone + "|" + vm.HostAccessLoopback }

// hostAccessUsage is the help of --host-access.
const hostAccessUsage = `what a --net user guest reaches besides the forwards into it: none (the default; QEMU's restrict=on: neither the host's services nor outside networks or DNS) or loopback (outside networks, and every service the host binds on 127.0.0.1, other VMs' SSH forwards included, at 10.0.2.2)`

// forwardsValue is -p/--publish: each value is parsed as it is given, so
// a bad one is a usage error naming it before anything runs, and the VM
// stores the canonical form.
type forwardsValue struct{ fwds *[]vm.Forward }

func (v forwardsValue) Set(s string) error {
	f, err := vm.ParseForward(s)
	var fe *vm.ForwardError
	if errors.As(err, &fe) {
		// pflag names the flag and the value already.
		return fmt.Errorf("%s (hint: use %s)", fe.Reason, vm.ForwardForms)
	}
	if err != nil {
		return err
	}
	*v.fwds = append(*v.fwds, f)
	return nil
}

func (v forwardsValue) String() string {
	if v.fwds == nil {
		return ""
	}
	var s []string
	for _, f := range *v.fwds {
		s = append(s, f.String())
	}
	return strings.Join(s, " ")
}

func (forwardsValue) Type() string { return "forward" }
