// Package vmfile reads VM files: YAML documents that describe one VM
// (banger vm create -f) or several under vms: (banger up and down), with
// the settings of vm create's flags, into vm.CreateOptions.
package vmfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/vm"
)

// DefaultName is the file banger up and down read unless told another.
const DefaultName = "banger.yaml"

// File is a parsed VM file.
type File struct {
	Path string // as given: errors name it so
	Dir  string // absolute; relative host paths in the file are relative to it
	// Single is set for a one-VM document (its keys at the top level,
	// its name under name:, which may be missing) rather than VMs under
	// vms:.
	Single bool
	VMs    []*VM // in file order

	merges int // mappings merged so far (<<:)
}

// VM is one VM of a file: what the file says about it, with host paths
// not yet resolved (see CreateOptions).
type VM struct {
	Name string
	Line int // the line naming it (the document's first for a Single file without a name)

	file *File
	opts vm.CreateOptions // everything but the host paths below
	set  map[string]int   // the keys given, and their lines

	rootfs, initScript       value
	mounts, copyIns, sshKeys []value
}

// value is a string of the file and the line it is on.
type value struct {
	s    string
	line int
}

// Error is a mistake in a VM file: "banger.yaml:12: …". Line is 0 when
// the YAML parser did not say where.
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func (f *File) errorf(line int, format string, args ...any) error {
	return &Error{File: f.Path, Line: line, Err: fmt.Errorf(format, args...)}
}

// Load reads and parses the VM file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading VM file: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("reading VM file: %w", err)
	}
	return Parse(path, dir, data)
}

// Parse parses data, the VM file at path whose relative host paths are
// relative to dir. It checks everything that depends only on the text:
// keys, types, sizes, port forwards, names; CreateOptions checks the
// host paths.
func Parse(path, dir string, data []byte) (*File, error) {
	f := &File{Path: path, Dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, f.errorf(0, "the file is empty (hint: describe VMs under vms:, see \"banger up --help\")")
	} else if err != nil {
		return nil, f.yamlError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, f.errorf(next.Line, "a second YAML document: a VM file holds one (hint: put every VM under vms:)")
	} else if !errors.Is(err, io.EOF) {
		return nil, f.yamlError(err)
	}
	if len(doc.Content) == 0 {
		return nil, f.errorf(doc.Line, "the file is empty (hint: describe VMs under vms:, see \"banger up --help\")")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, f.errorf(root.Line, "want a mapping with vms: (or one VM's keys), got %s", describe(root))
	}
	vms, single, err := f.splitTop(root)
	if err != nil {
		return nil, err
	}
	if single {
		f.Single = true
		v, err := f.parseVM("", root.Line, root)
		if err != nil {
			return nil, err
		}
		f.VMs = []*VM{v}
		return f, nil
	}
	if err := f.parseVMs(vms); err != nil {
		return nil, err
	}
	return f, nil
}

// splitTop finds vms: in the top-level mapping. Without it the document
// is one VM.
func (f *File) splitTop(root *yaml.Node) (*yaml.Node, bool, error) {
	at := -1
	for i := 0; i < len(root.Content); i += 2 {
		if root.Content[i].Value == "vms" {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, true, nil
	}
	for i := 0; i < len(root.Content); i += 2 {
		k := root.Content[i]
		switch {
		case i == at:
		case k.Value == "vms":
			return nil, false, f.errorf(k.Line, "vms: given twice (first at line %d)", root.Content[at].Line)
		default:
			hint := "a file with vms: has nothing else at the top level"
			if _, ok := fieldByKey[k.Value]; ok {
				hint = fmt.Sprintf("indent %s: under a VM in vms:", k.Value)
			}
			return nil, false, f.errorf(k.Line, "unknown top-level key %q (hint: %s)", k.Value, hint)
		}
	}
	vms := root.Content[at+1]
	if vms.Kind != yaml.MappingNode && vms.ShortTag() != "!!null" {
		return nil, false, f.errorf(vms.Line, "vms: want a mapping of VM names to their keys, got %s", describe(vms))
	}
	return vms, false, nil
}

// parseVMs parses the VMs under vms:, in order.
func (f *File) parseVMs(vms *yaml.Node) error {
	first := map[string]int{}
	for i := 0; i < len(vms.Content); i += 2 {
		k, n := vms.Content[i], vms.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return f.errorf(k.Line, "a VM name must be a string, got %s", describe(k))
		}
		if err := paths.ValidateName("vm", k.Value); err != nil {
			return f.errorf(k.Line, "%w", err)
		}
		if line, dup := first[k.Value]; dup {
			return f.errorf(k.Line, "VM %q is defined twice (first at line %d)", k.Value, line)
		}
		first[k.Value] = k.Line
		v, err := f.parseVM(k.Value, k.Line, n)
		if err != nil {
			return err
		}
		f.VMs = append(f.VMs, v)
	}
	if len(f.VMs) == 0 {
		return f.errorf(vms.Line, "vms: lists no VM (hint: add one, e.g. \"web: {image: golden}\")")
	}
	return nil
}

// Get returns the VM called name.
func (f *File) Get(name string) (*VM, bool) {
	for _, v := range f.VMs {
		if v.Name == name {
			return v, true
		}
	}
	return nil, false
}

// Names are the file's VM names, in order.
func (f *File) Names() []string {
	var names []string
	for _, v := range f.VMs {
		names = append(names, v.Name)
	}
	return names
}

// yamlLineRE is how yaml.v3 starts an error that knows its line.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError turns a YAML syntax error into an Error at its line.
func (f *File) yamlError(err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: f.Path, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg[len(m[0]):])}
	}
	return &Error{File: f.Path, Err: fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))}
}
