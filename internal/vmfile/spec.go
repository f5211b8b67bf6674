package vmfile

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/ext4"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/vm"
)

// field is a key of a VM and how its value is read.
type field struct {
	key string
	set func(v *VM, n *yaml.Node) error
}

// fields are a VM's keys, named after vm create's flags (with '_' for
// '-'), in the order the README lists them.
var fields = []field{
	{"image", func(v *VM, n *yaml.Node) (err error) { v.opts.Image, err = str(n); return }},
	{"kernel", func(v *VM, n *yaml.Node) (err error) { v.opts.Kernel, err = str(n); return }},
	{"rootfs", func(v *VM, n *yaml.Node) (err error) { v.rootfs, err = strValue(n); return }},
	{"arch", func(v *VM, n *yaml.Node) error {
		s, err := str(n)
		if err == nil {
			v.opts.Arch, err = arch.Canonical(s)
		}
		return err
	}},
	{"snapshot", func(v *VM, n *yaml.Node) (err error) { v.opts.Snapshot, err = str(n); return }},
	{"cold", func(v *VM, n *yaml.Node) (err error) { v.opts.Cold, err = boolean(n); return }},
	{"cpus", func(v *VM, n *yaml.Node) error {
		c, err := integer(n)
		if err == nil && c < 1 {
			err = fmt.Errorf("want 1 or more, got %d", c)
		}
		v.opts.CPUs = c
		return err
	}},
	{"memory", func(v *VM, n *yaml.Node) error {
		s, err := sizeText(n)
		if err != nil {
			return err
		}
		if v.opts.MemoryMiB, err = vm.ParseMemory(s); err != nil {
			return err
		}
		if v.opts.MemoryMiB < vm.MinMemoryMiB {
			return fmt.Errorf("%dM is too little: a VM needs at least %dM", v.opts.MemoryMiB, vm.MinMemoryMiB)
		}
		return nil
	}},
	{"disk_size", func(v *VM, n *yaml.Node) error {
		s, err := sizeText(n)
		if err == nil {
			v.opts.DiskSize, err = ext4.ParseSize(s)
		}
		return err
	}},
	{"vmm", func(v *VM, n *yaml.Node) (err error) {
		v.opts.VMM, err = oneOf(n, vm.VMMQEMU, vm.VMMFirecracker, "auto")
		return
	}},
	{"jailer", func(v *VM, n *yaml.Node) (err error) { v.opts.Jailer, err = boolean(n); return }},
	{"net", func(v *VM, n *yaml.Node) (err error) {
		v.opts.Net, err = oneOf(n, vm.NetUser, vm.NetTap, vm.NetNone)
		return
	}},
	{"host_access", func(v *VM, n *yaml.Node) (err error) {
		v.opts.HostAccess, err = oneOf(n, vm.HostAccessNone, vm.HostAccessLoopback)
		return
	}},
	{"publish", func(v *VM, n *yaml.Node) error {
		items, err := list(n)
		if err != nil {
			return err
		}
		for _, it := range items {
			f, ferr := vm.ParseForward(it.Value)
			if ferr != nil {
				return bad(it, "%w", ferr)
			}
			v.opts.Forwards = append(v.opts.Forwards, f)
		}
		return nil
	}},
	{"kernel_args", func(v *VM, n *yaml.Node) (err error) { v.opts.KernelArgs, err = str(n); return }},
	{"ready", func(v *VM, n *yaml.Node) (err error) {
		v.opts.Ready, err = oneOf(n, vm.ReadySSH, vm.ReadyConsole, "auto")
		return
	}},
	{"ready_marker", func(v *VM, n *yaml.Node) (err error) { v.opts.ReadyMarker, err = str(n); return }},
	{"mounts", func(v *VM, n *yaml.Node) (err error) { v.mounts, err = values(n); return }},
	{"copy_ins", func(v *VM, n *yaml.Node) (err error) { v.copyIns, err = values(n); return }},
	{"init_script", func(v *VM, n *yaml.Node) (err error) { v.initScript, err = strValue(n); return }},
	{"ssh_keys", func(v *VM, n *yaml.Node) (err error) { v.sshKeys, err = values(n); return }},
	{"hostname", func(v *VM, n *yaml.Node) (err error) { v.opts.Hostname, err = str(n); return }},
}

var fieldByKey = func() map[string]field {
	m := map[string]field{}
	for _, f := range fields {
		m[f.key] = f
	}
	return m
}()

// Keys are the keys a VM may have, in order.
func Keys() []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// parseVM reads the VM called name (named at line) from n, a mapping of
// its keys or null. In a Single file, name is "" and n may name it.
func (f *File) parseVM(name string, line int, n *yaml.Node) (*VM, error) {
	v := &VM{Name: name, Line: line, file: f, set: map[string]int{}}
	n = deref(n)
	if n.ShortTag() == "!!null" {
		return v, f.check(v)
	}
	if n.Kind != yaml.MappingNode {
		return nil, f.errorf(n.Line, "%s: want a mapping of its keys (image:, cpus:, …), got %s", v.label(), describe(n))
	}
	pairs, err := f.pairs(v, n)
	if err != nil {
		return nil, err
	}
	if f.Single {
		for _, p := range pairs {
			if p.key.Value == "name" {
				if err := f.setName(v, p.key, p.val); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, p := range pairs {
		k, val := p.key, p.val
		if k.Value == "name" && f.Single {
			continue
		}
		fd, ok := fieldByKey[k.Value]
		if !ok {
			return nil, f.errorf(k.Line, "unknown key %q%s (hint: %s)", k.Value, v.in(), f.suggest(k.Value, val))
		}
		if val.ShortTag() == "!!null" {
			continue // as if not given
		}
		v.set[k.Value] = k.Line
		if err := fd.set(v, val); err != nil {
			line := val.Line
			var bv *badValue
			if errors.As(err, &bv) {
				line, err = bv.line, bv.err
			}
			return nil, &Error{File: f.Path, Line: line, Err: fmt.Errorf("%s%s: %w", v.prefix(), k.Value, err)}
		}
	}
	return v, f.check(v)
}

// pair is a key and its value (aliases followed).
type pair struct{ key, val *yaml.Node }

// pairs lists the keys of the mapping n, refusing one given twice, with
// the keys of merged mappings (<<: *anchor) that n does not set itself.
func (f *File) pairs(v *VM, n *yaml.Node) ([]pair, error) {
	var own, merged []pair
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, f.errorf(k.Line, "%s: a key must be a name, got %s", v.label(), describe(k))
		}
		if k.ShortTag() == "!!merge" {
			m, err := f.mergePairs(v, val)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		if line, dup := first[k.Value]; dup {
			return nil, f.errorf(k.Line, "%s: key %q given twice (first at line %d)", v.label(), k.Value, line)
		}
		first[k.Value] = k.Line
		own = append(own, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := first[p.key.Value]; !ok {
			first[p.key.Value] = p.key.Line
			own = append(own, p)
		}
	}
	return own, nil
}

// maxMerges bounds the mappings merged into one file's VMs: merges of
// merges can otherwise multiply without end.
const maxMerges = 1000

// mergePairs are the pairs of a merge key's value: a mapping, or a list
// of them (the first one setting a key wins).
func (f *File) mergePairs(v *VM, val *yaml.Node) ([]pair, error) {
	if f.merges++; f.merges > maxMerges {
		return nil, f.errorf(val.Line, "%s: more than %d merges (<<:) in the file, or a mapping merged into itself", v.label(), maxMerges)
	}
	maps := []*yaml.Node{val}
	if val.Kind == yaml.SequenceNode {
		maps = nil
		for _, it := range val.Content {
			maps = append(maps, deref(it))
		}
	}
	var out []pair
	for _, m := range maps {
		if m.Kind != yaml.MappingNode {
			return nil, f.errorf(m.Line, "%s: <<: merges a mapping (<<: *anchor), got %s", v.label(), describe(m))
		}
		ps, err := f.pairs(v, m)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// setName reads the name: of a Single file's VM.
func (f *File) setName(v *VM, k, val *yaml.Node) error {
	name, err := str(val)
	if err == nil {
		err = paths.ValidateName("vm", name)
	}
	if err != nil {
		return f.errorf(val.Line, "name: %w", unbad(err))
	}
	v.Name, v.Line = name, k.Line
	return nil
}

// check refuses what no combination of later keys could fix.
func (f *File) check(v *VM) error {
	o := v.opts
	switch {
	case o.Image == "" && v.rootfs.s == "" && o.Snapshot == "":
		return f.errorf(v.Line, "%s has no image (hint: add image: IMAGE, or kernel: and rootfs:, or snapshot:)", v.label())
	case o.Image != "" && v.rootfs.s != "":
		return f.errorf(v.rootfs.line, "%srootfs: give image or rootfs, not both", v.prefix())
	case v.rootfs.s != "" && o.Kernel == "":
		return f.errorf(v.rootfs.line, "%srootfs needs kernel: (hint: \"banger kernel list\" shows the installed kernels)", v.prefix())
	}
	return nil
}

// label names v in messages.
func (v *VM) label() string {
	if v.Name == "" {
		return "the VM"
	}
	return fmt.Sprintf("VM %q", v.Name)
}

// prefix starts a message about one of v's keys.
func (v *VM) prefix() string {
	if v.Name == "" {
		return ""
	}
	return v.label() + ": "
}

// in ends "unknown key …" with the VM's name.
func (v *VM) in() string {
	if v.Name == "" {
		return ""
	}
	return " in " + v.label()
}
