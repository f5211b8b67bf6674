// Package option describes what is wrong with the options a library was
// given, in the library's words, so that each caller can name the options
// as its users wrote them: the command line as flags, a VM file as keys.
package option

import (
	"errors"
	"regexp"
	"strings"
)

// Error is an option that cannot be used, or options that cannot be used
// together. Its message starts with the option and its value, if any:
// "cpus 99 is out of range (hint: use 1 to 32)". Problem and Hint name
// other options as {name}: "applies only to {net} user".
type Error struct {
	Option  string // lower case, words joined by '-': "cpus", "disk-size"; "" when Problem names the options
	Value   string // as given; "" names the option alone
	Problem string // what is wrong
	Hint    string // how to fix it, or ""
	Err     error  // the cause, if any: "OPTION: ERR"
}

func (e *Error) Error() string { return e.Spell(func(o string) string { return o }) }

func (e *Error) Unwrap() error { return e.Err }

// refRE is an option named in Problem or Hint.
var refRE = regexp.MustCompile(`\{([a-z][a-z0-9-]*)\}`)

// Spell returns e's message with each option named by name.
func (e *Error) Spell(name func(option string) string) string {
	var parts []string
	if e.Option != "" {
		parts = append(parts, name(e.Option))
		if e.Value != "" {
			parts = append(parts, e.Value)
		}
	}
	refs := func(s string) string {
		return refRE.ReplaceAllStringFunc(s, func(m string) string { return name(m[1 : len(m)-1]) })
	}
	if e.Problem != "" {
		parts = append(parts, refs(e.Problem))
	}
	s := strings.Join(parts, " ")
	if e.Err != nil {
		if !strings.HasSuffix(s, ":") { // a VM file's key already ends so
			s += ":"
		}
		s += " " + e.Err.Error()
	}
	if e.Hint != "" {
		s += " (hint: " + refs(e.Hint) + ")"
	}
	return s
}

// Options returns the options e names: its own, then those in Problem and
// Hint.
func (e *Error) Options() []string {
	var out []string
	if e.Option != "" {
		out = append(out, e.Option)
	}
	return append(out, Refs(e.Problem+" "+e.Hint)...)
}

// Refs returns the options that s names as {name}.
func Refs(s string) []string {
	var out []string
	for _, m := range refRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// Spell returns err with the message of the Error in its chain written
// with each option named by name: the message of err is kept around it
// ("creating VM "a": --cpus 99 …"). An err spelled once is not spelled
// again, nor one without an Error.
func Spell(err error, name func(option string) string) error {
	var oe *Error
	var done *spelled
	if !errors.As(err, &oe) || errors.As(err, &done) {
		return err
	}
	msg, lib := err.Error(), oe.Error()
	i := strings.LastIndex(msg, lib)
	if i < 0 {
		return err
	}
	return &spelled{err: err, msg: msg[:i] + oe.Spell(name) + msg[i+len(lib):]}
}

// spelled is an error whose Error's options are spelled by its caller.
type spelled struct {
	err error
	msg string
}

func (e *spelled) Error() string { return e.msg }
func (e *spelled) Unwrap() error { return e.err }
