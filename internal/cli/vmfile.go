package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/vmfile"
)

// vmFileHelp is the part of up's and down's help about the file.
const vmFileHelp = `The VM file (banger.yaml in the current directory unless -f names
another) lists VMs under vms:, each with the settings of "banger vm
create" as keys: the flags' names with '_' for '-', in the plural for
lists (mounts, copy_ins, ssh_keys; publish for -p). Relative host paths
are relative to the file's directory:

  vms:
    web:
      image: golden
      cpus: 2
      memory: 1G
      publish: ["8080:80"]
      mounts: ["./src:/src"]
    db:
      kernel: generic-6.12
      rootfs: ./db.ext4
      disk_size: 4G

The README's "VM files" section lists every key.`

// loadVMFile reads the VM file at path; for up and down (named) every VM
// must have a name.
func loadVMFile(path string, named bool) (*vmfile.File, error) {
	f, err := vmfile.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (hint: write a VM file there, or name one with -f FILE; \"banger up --help\" shows one)", err)
	}
	if err != nil {
		return nil, err
	}
	if named && f.Single && f.VMs[0].Name == "" {
		return nil, &vmfile.Error{File: f.Path, Line: f.VMs[0].Line, Err: errors.New("the VM has no name (hint: add name: NAME, or list VMs under vms:)")}
	}
	return f, nil
}

// addVMFileFlag adds -f FILE.
func addVMFileFlag(f *pflag.FlagSet, p *string, def, usage string) {
	f.StringVarP(p, "file", "f", def, usage)
	_ = cobra.MarkFlagFilename(f, "file", "yaml", "yml")
}

// vmCreateArgs are vm create's arguments: a NAME, which -f makes optional.
func vmCreateArgs(file *string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if *file != "" && len(args) <= 1 {
			return nil
		}
		return exactArgs(1, "a VM name")(c, args)
	}
}

// flagsBesideFile refuses flags that describe the VM next to -f: the
// file alone does.
func flagsBesideFile(f *pflag.FlagSet) error {
	var given []string
	f.Visit(func(fl *pflag.Flag) {
		if fl.Name != "file" {
			given = append(given, "--"+fl.Name)
		}
	})
	if len(given) == 0 {
		return nil
	}
	return &usageError{fmt.Errorf("%s cannot be combined with -f (hint: set %s in the VM file)",
		strings.Join(given, ", "), strings.ReplaceAll(strings.TrimPrefix(given[0], "--"), "-", "_"))}
}
