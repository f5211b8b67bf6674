package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/thaloco/banger/internal/vm"
)

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
