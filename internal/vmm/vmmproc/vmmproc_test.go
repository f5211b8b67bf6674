package vmmproc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSpawnDetachesAndQuotesOnlyItsOwnOutput(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "console.log")
	if err := os.WriteFile(log, []byte("an earlier run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The child waits for a file the test makes once it has read the
	// child's session id: its stdin is /dev/null, so it could otherwise
	// exit and be reaped before Getsid looks at it.
	release := filepath.Join(dir, "release")
	p, err := Spawn([]string{"sh", "-c", `echo one; echo two >&2; while [ ! -e "$0" ]; do sleep 0.01; done; exit 3`, release}, log)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := unix.Getsid(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	if sid != p.PID() {
		t.Fatalf("VMM session id %d, want its own session %d", sid, p.PID())
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit")
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Err = %v, want exit status 3", p.Err())
	}
	if got, want := p.Output(5), []string{"one", "two"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Output = %q, want %q", got, want)
	}
}

func TestKillReaps(t *testing.T) {
	p, err := Spawn([]string{"sleep", "60"}, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	select {
	case <-p.Done():
	default:
		t.Fatal("Kill returned before the process was reaped")
	}
}

func TestSpawnMissingBinary(t *testing.T) {
	if _, err := Spawn([]string{"/nonexistent/vmm"}, filepath.Join(t.TempDir(), "log")); err == nil {
		t.Fatal("Spawn of a missing binary succeeded")
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		start uint64
		alive bool
	}{
		{"1234 (qemu-system-x86) S 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 987654 100 200", 987654, true},
		{"1234 (we (ird) name) R 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 42 100 200", 42, true},
		{"1234 (qemu) Z 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 42 100 200", 42, false},
		{"garbage", 0, false},
	} {
		start, alive := parseStat(tc.in)
		if start != tc.start || alive != tc.alive {
			t.Errorf("parseStat(%q) = %d, %v; want %d, %v", tc.in, start, alive, tc.start, tc.alive)
		}
	}
}
