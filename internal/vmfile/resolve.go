package vmfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/thaloco/banger/internal/vm"
)

// CreateOptions is v as the options of vm.Store.Create, its host paths
// resolved: relative ones against the file's directory, ~/ against home.
// The rootfs, init script and SSH key files must exist (the key files
// are read now), the mounts' and copy-ins' host directories must be
// directories. An error names the file and line.
func (v *VM) CreateOptions(home string) (vm.CreateOptions, error) {
	o := v.opts
	o.Name = v.Name
	o.Forwards = slices.Clone(v.opts.Forwards)
	f := v.file
	fail := func(line int, key string, err error) (vm.CreateOptions, error) {
		return vm.CreateOptions{}, f.errorf(line, "%s%s: %w", v.prefix(), key, err)
	}
	if v.rootfs.s != "" {
		p, err := f.hostPath(v.rootfs.s, home)
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			return fail(v.rootfs.line, "rootfs", err)
		}
		o.Rootfs = p
	}
	if v.initScript.s != "" {
		p, err := f.hostPath(v.initScript.s, home)
		var st os.FileInfo
		if err == nil {
			st, err = os.Stat(p)
		}
		if err == nil && !st.Mode().IsRegular() {
			err = fmt.Errorf("%s is not a regular file", p)
		}
		if err != nil {
			return fail(v.initScript.line, "init_script", err)
		}
		o.InitScript = p
	}
	for _, m := range v.mounts {
		s, err := f.hostPair(m.s, home)
		var mt vm.Mount
		if err == nil {
			mt, err = vm.ParseMount(s)
		}
		if err != nil {
			return fail(m.line, "mounts", mountHint(err))
		}
		o.Mounts = append(o.Mounts, mt)
	}
	for _, c := range v.copyIns {
		s, err := f.hostPair(c.s, home)
		var ci vm.CopyIn
		if err == nil {
			ci, err = vm.ParseCopyIn(s)
		}
		if err != nil {
			return fail(c.line, "copy_ins", mountHint(err))
		}
		o.CopyIns = append(o.CopyIns, ci)
	}
	for _, k := range v.sshKeys {
		p, err := f.hostPath(k.s, home)
		var keys []string
		if err == nil {
			keys, err = vm.ReadPublicKeys(p)
		}
		if err != nil {
			return fail(k.line, "ssh_keys", err)
		}
		o.SSHKeys = append(o.SSHKeys, keys...)
	}
	return o, nil
}

// hostPath resolves a host path of the file.
func (f *File) hostPath(p, home string) (string, error) {
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		if home == "" {
			return "", fmt.Errorf("%s starts with ~, but $HOME is not set", p)
		}
		return filepath.Join(home, p[1:]), nil
	case filepath.IsAbs(p):
		return filepath.Clean(p), nil
	}
	return filepath.Join(f.Dir, p), nil
}

// hostPair resolves the host directory of HOSTDIR:GUESTDIR[:ro].
func (f *File) hostPair(s, home string) (string, error) {
	host, rest, ok := strings.Cut(s, ":")
	if !ok || host == "" {
		return s, nil // the parser says what is wrong
	}
	p, err := f.hostPath(host, home)
	return p + ":" + rest, err
}

// mountHint adds the accepted forms to a malformed mount or copy-in.
func mountHint(err error) error {
	var me *vm.MountError
	if errors.As(err, &me) {
		return fmt.Errorf("%w (hint: use %s; a relative HOSTDIR is relative to the file's directory)", err, vm.MountForms)
	}
	return err
}
