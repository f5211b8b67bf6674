package vmfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/thaloco/banger/internal/option"
)

// pluralKeys are the keys of list options, which vm names in the singular.
var pluralKeys = map[string]string{"mount": "mounts", "copy-in": "copy_ins", "ssh-key": "ssh_keys"}

// Key is the key of vm's option (see option.Error): its name with '_'
// for '-', in the plural for lists.
func Key(o string) string {
	if k, ok := pluralKeys[o]; ok {
		return k
	}
	return strings.ReplaceAll(o, "-", "_")
}

// CreateError returns err, an error of creating v, as a mistake of the
// file when vm refused its options: at the line of the first option it
// names that v sets (else v's), the options spelled as keys ("cpus: 99 is
// out of range"). Other errors are returned as they are.
func (v *VM) CreateError(err error) error {
	var oe *option.Error
	if !errors.As(err, &oe) {
		return err
	}
	line := v.Line
	for _, o := range oe.Options() {
		if l, ok := v.set[Key(o)]; ok {
			line = l
			break
		}
	}
	return &Error{File: v.file.Path, Line: line, Err: fmt.Errorf("%s%w", v.prefix(), option.Spell(oe, func(o string) string { return Key(o) + ":" }))}
}
