package guestinit

import (
	"fmt"
	"slices"
	"strings"
)

const resultPrefix = "banger-restore:"

// RestoreResult is what RestoreCommand reports it did.
type RestoreResult struct {
	OK       bool   // the seed, the clock and the hostname were set
	Reseed   string // "ioctl" (the reseed program), "perl", "python" or "none"
	Clock    string // "ns" (set to the nanosecond), "s" (to the second) or "failed"
	Hostname string // "set" or "failed"
	MAC      string // "set", "kept" (none asked for) or "failed"
	Net      string // "set", "same" (the clone's address is the snapshot's), "kept" (none asked for) or "failed"
}

var resultValues = map[string][]string{
	"reseed":   {"ioctl", "perl", "python", "none"},
	"clock":    {"ns", "s", "failed"},
	"hostname": {"set", "failed"},
	"mac":      {"set", "kept", "failed"},
	"net":      {"set", "same", "kept", "failed"},
}

// ParseRestoreResult reads the result line RestoreCommand prints last:
//
//	banger-restore: ok reseed=ioctl clock=ns hostname=set mac=kept net=kept
func ParseRestoreResult(stdout string) (RestoreResult, error) {
	var r RestoreResult
	lines := strings.Split(strings.TrimRight(stdout, "\r\n"), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	f := strings.Fields(last)
	if len(f) != 7 || f[0] != resultPrefix || (f[1] != "ok" && f[1] != "failed") {
		return r, fmt.Errorf("the restore step printed no result line (its last line is %q)", last)
	}
	r.OK = f[1] == "ok"
	dst := []*string{&r.Reseed, &r.Clock, &r.Hostname, &r.MAC, &r.Net}
	for i, key := range []string{"reseed", "clock", "hostname", "mac", "net"} {
		k, v, _ := strings.Cut(f[2+i], "=")
		if k != key || !slices.Contains(resultValues[key], v) {
			return r, fmt.Errorf("bad restore result %q: want %s=%s", last, key, strings.Join(resultValues[key], "|"))
		}
		*dst[i] = v
	}
	return r, nil
}
