package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/vm"
)

// mountsValue is --mount: each value is parsed (and its host directory
// resolved and checked) as it is given.
type mountsValue struct{ mounts *[]vm.Mount }

func (v mountsValue) Set(s string) error {
	m, err := vm.ParseMount(s)
	if err != nil {
		return mountHint(err)
	}
	*v.mounts = append(*v.mounts, m)
	return nil
}

func (v mountsValue) String() string {
	if v.mounts == nil {
		return ""
	}
	var s []string
	for _, m := range *v.mounts {
		s = append(s, m.String())
	}
	return strings.Join(s, " ")
}

func (mountsValue) Type() string { return "host:guest[:ro]" }

// copyInsValue is --copy-in.
type copyInsValue struct{ copyIns *[]vm.CopyIn }

func (v copyInsValue) Set(s string) error {
	c, err := vm.ParseCopyIn(s)
	if err != nil {
		return mountHint(err)
	}
	*v.copyIns = append(*v.copyIns, c)
	return nil
}

func (v copyInsValue) String() string {
	if v.copyIns == nil {
		return ""
	}
	var s []string
	for _, c := range *v.copyIns {
		s = append(s, c.String())
	}
	return strings.Join(s, " ")
}

func (copyInsValue) Type() string { return "host:guest" }

func mountHint(err error) error {
	var me *vm.MountError
	if errors.As(err, &me) {
		// pflag names the flag and the value already.
		return fmt.Errorf("%s (hint: use %s)", me.Reason, vm.MountForms)
	}
	return err
}

// sshKeysValue is --ssh-key FILE: the public key lines of FILE (e.g.
// ~/.ssh/id_ed25519.pub), read when the flag is given.
type sshKeysValue struct{ keys *[]string }

func (v sshKeysValue) Set(file string) error {
	keys, err := vm.ReadPublicKeys(file)
	if err != nil {
		return err
	}
	*v.keys = append(*v.keys, keys...)
	return nil
}

func (v sshKeysValue) String() string { return "" }

func (sshKeysValue) Type() string { return "file" }

// initScriptValue is --init-script FILE, checked readable when given.
type initScriptValue struct{ path *string }

func (v initScriptValue) Set(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", file)
	}
	*v.path = file
	return nil
}

func (v initScriptValue) String() string {
	if v.path == nil {
		return ""
	}
	return *v.path
}

func (initScriptValue) Type() string { return "file" }

// addSetupFlags adds the flags of the setup a VM gets over SSH.
func (o *vmCreateOptions) addSetupFlags(f *pflag.FlagSet) {
	f.Var(mountsValue{&o.Mounts}, "mount", "share a host directory with the guest over virtio-9p, mounted at GUESTDIR at every start, read-only with :ro (QEMU; repeatable)")
	f.Var(copyInsValue{&o.CopyIns}, "copy-in", "copy a host directory into a read-only drive the guest mounts at GUESTDIR (made once, at create; repeatable)")
	f.Var(initScriptValue{&o.InitScript}, "init-script", "run this script as root in the guest at its first start, before it counts as ready (copied at create)")
	f.Var(sshKeysValue{&o.SSHKeys}, "ssh-key", "add the public keys in this file (e.g. ~/.ssh/id_ed25519.pub) to root's authorized_keys (repeatable)")
	f.StringVar(&o.Hostname, "hostname", "", "the guest's hostname (default: the VM's name after a restore, else the image's)")
}
