// Package arch names the CPU architectures banger runs guests of, the one
// way banger records them (x86_64, arm64) whatever spelling was typed, and
// recognises a kernel file's architecture by its content.
package arch

import (
	"fmt"
	"runtime"
	"strings"
)

// The architectures banger knows, as it records them in catalogs,
// manifests and VM configs.
const (
	X86_64 = "x86_64"
	ARM64  = "arm64"
)

// Known lists the architectures in the order messages name them.
var Known = []string{X86_64, ARM64}

// UnknownError is an architecture name banger does not know.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown arch %q (known: %s; amd64 and aarch64 are accepted too)", e.Name, strings.Join(Known, ", "))
}

// Canonical returns banger's name for s: x86_64 for x86_64, amd64 and
// x86-64; arm64 for arm64 and aarch64. Anything else is an *UnknownError.
func Canonical(s string) (string, error) {
	switch strings.ToLower(s) {
	case "x86_64", "amd64", "x86-64":
		return X86_64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", &UnknownError{Name: s}
}

// Or returns the canonical name of s, or def when s is empty or unknown:
// records written before banger knew other architectures than x86_64
// have none.
func Or(s, def string) string {
	if a, err := Canonical(s); err == nil {
		return a
	}
	return def
}

// Host is the architecture banger runs on (runtime.GOARCH in banger's
// spelling).
func Host() string { return fromGo(runtime.GOARCH) }

func fromGo(goarch string) string {
	if a, err := Canonical(goarch); err == nil {
		return a
	}
	return goarch
}

// GOARCH is a's name in Go and OCI platforms: amd64 for x86_64, arm64 for
// arm64.
func GOARCH(a string) string {
	if a == X86_64 {
		return "amd64"
	}
	return a
}

// UName is a's name as the guest's `uname -m` says it: x86_64 or aarch64.
func UName(a string) string {
	if a == ARM64 {
		return "aarch64"
	}
	return a
}
