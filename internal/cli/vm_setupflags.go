package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/vm"
)

// listValue is a repeatable flag whose every value is parsed (and checked)
// as it is given, so a bad one is a usage error naming it before anything
// runs: --mount, --copy-in.
type listValue[T fmt.Stringer] struct {
	list  *[]T
	parse func(string) (T, error)
	typ   string
}

func (v listValue[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return mountHint(err)
	}
	*v.list = append(*v.list, x)
	return nil
}

func (v listValue[T]) String() string {
	if v.list == nil {
		return ""
	}
	var s []string
	for _, x := range *v.list {
		s = append(s, x.String())
	}
	return strings.Join(s, " ")
}

func (v listValue[T]) Type() string { return v.typ }

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
	f.Var(listValue[vm.Mount]{&o.mounts, vm.ParseMount, "host:guest[:ro]"}, "mount", "share a host directory with the guest over virtio-9p, mounted at GUESTDIR at every start, read-only with :ro (QEMU; repeatable)")
	f.Var(listValue[vm.CopyIn]{&o.copyIns, vm.ParseCopyIn, "host:guest"}, "copy-in", "copy a host directory into a read-only drive the guest mounts at GUESTDIR (made once, at create; repeatable)")
	f.Var(initScriptValue{&o.initScript}, "init-script", "run this script as root in the guest at its first start, before it counts as ready (copied at create)")
	f.Var(sshKeysValue{&o.sshKeys}, "ssh-key", "add the public keys in this file (e.g. ~/.ssh/id_ed25519.pub) to root's authorized_keys (repeatable)")
	f.StringVar(&o.hostname, "hostname", "", "the guest's hostname (default: the VM's name after a restore, else the image's)")
}
