package option

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func flag(o string) string { return "--" + o }

func TestSpell(t *testing.T) {
	cause := errors.New("unknown arch")
	for _, tc := range []struct {
		name      string
		err       *Error
		lib, flag string
		options   []string
	}{
		{"value", &Error{Option: "cpus", Value: "99", Problem: "is out of range", Hint: "use 1 to 32"},
			"cpus 99 is out of range (hint: use 1 to 32)", "--cpus 99 is out of range (hint: use 1 to 32)", []string{"cpus"}},
		{"refs", &Error{Option: "host-access", Problem: "applies only to {net} user", Hint: "drop {host-access}"},
			"host-access applies only to net user (hint: drop host-access)", "--host-access applies only to --net user (hint: drop --host-access)", []string{"host-access", "net", "host-access"}},
		{"no option", &Error{Problem: "give an image or {rootfs}, not both"},
			"give an image or rootfs, not both", "give an image or --rootfs, not both", []string{"rootfs"}},
		{"cause", &Error{Option: "arch", Err: cause}, "arch: unknown arch", "--arch: unknown arch", []string{"arch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.lib {
				t.Errorf("Error() = %q, want %q", got, tc.lib)
			}
			if got := tc.err.Spell(flag); got != tc.flag {
				t.Errorf("Spell = %q, want %q", got, tc.flag)
			}
			if got := tc.err.Options(); !slices.Equal(got, tc.options) {
				t.Errorf("Options() = %q, want %q", got, tc.options)
			}
		})
	}
}

// TestSpellWrapped: the message around the Error is kept, the chain too,
// and a spelled error is spelled once.
func TestSpellWrapped(t *testing.T) {
	oe := &Error{Option: "cpus", Value: "99", Problem: "is out of range"}
	err := fmt.Errorf("creating VM %q: %w", "a", oe)
	got := Spell(err, flag)
	if want := `creating VM "a": --cpus 99 is out of range`; got.Error() != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var back *Error
	if !errors.As(got, &back) || back != oe {
		t.Error("the spelled error does not wrap the Error")
	}
	again := Spell(fmt.Errorf("file: %w", got), func(o string) string { return strings.ToUpper(o) })
	if want := `file: creating VM "a": --cpus 99 is out of range`; again.Error() != want {
		t.Errorf("spelled twice: %q, want %q", again, want)
	}
	plain := errors.New("no option here")
	if got := Spell(plain, flag); got != plain { //nolint:errorlint // the very error, not one wrapping it
		t.Error("an error without an Error is not returned as is")
	}
}
