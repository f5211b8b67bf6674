package archive

import (
	"errors"
	"fmt"
)

// UnsafeEntryError reports an archive entry that breaks the bundle rules.
type UnsafeEntryError struct {
	Name   string // the entry name as it appears in the tar header
	Reason string // what is wrong with it
	Hint   string // how to fix the bundle, when known
}

func (e *UnsafeEntryError) Error() string {
	msg := fmt.Sprintf("unsafe bundle entry %q: %s", e.Name, e.Reason)
	if e.Hint != "" {
		msg += " (hint: " + e.Hint + ")"
	}
	return msg
}

// ErrLimitExceeded is wrapped by the errors reporting a bundle that goes
// past its Limits.
var ErrLimitExceeded = errors.New("bundle limit exceeded")

func unsafeEntry(name, reason, hint string) error {
	return &UnsafeEntryError{Name: name, Reason: reason, Hint: hint}
}
