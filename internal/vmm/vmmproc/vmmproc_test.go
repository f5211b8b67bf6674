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

func TestParseUsage(t *testing.T) {
	u, start, ok := parseUsage("1234 (qemu (x)) S 1 1234 1234 0 -1 4194560 1 2 3 4 150 250 7 8 20 0 3 0 987654 100 2560", 4096)
	if !ok || start != 987654 || u.CPU != 4*time.Second || u.RSS != 2560*4096 {
		t.Errorf("parseUsage = %+v, %d, %v; want 4s of CPU, 10 MiB, start 987654", u, start, ok)
	}
	if _, _, ok := parseUsage("1234 (qemu) Z 1 1234 1234 0 -1 4194560 1 2 3 4 150 250 7 8 20 0 3 0 987654 100 0", 4096); ok {
		t.Error("parseUsage of a zombie succeeded")
	}
	if _, _, ok := parseUsage("1234 (short) S 1 2 3", 4096); ok {
		t.Error("parseUsage of a short line succeeded")
	}
}

// TestUsage: a process that burns CPU shows it, and a process gone (or
// its pid reused) is an error.
func TestUsage(t *testing.T) {
	p, err := Spawn([]string{"sh", "-c", "while :; do :; done"}, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	start, _ := StartTime(p.PID())
	id := ID{PID: p.PID(), Start: start}
	var u Usage
	for deadline := time.Now().Add(time.Minute); u.CPU < 50*time.Millisecond; time.Sleep(50 * time.Millisecond) {
		if u, err = id.Usage(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Usage = %+v after a minute of a busy loop", u)
		}
	}
	if u.RSS == 0 {
		t.Errorf("Usage = %+v, want some resident memory", u)
	}
	if _, err := (ID{PID: p.PID(), Start: start + 1}).Usage(); err == nil {
		t.Error("Usage of a pid whose start time differs succeeded")
	}
	p.Kill()
	if _, err := id.Usage(); err == nil {
		t.Error("Usage of a process killed and reaped succeeded")
	}
}
