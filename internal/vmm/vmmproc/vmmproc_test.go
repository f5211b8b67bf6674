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
	log := filepath.Join(t.TempDir(), "console.log")
	if err := os.WriteFile(log, []byte("an earlier run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Spawn([]string{"sh", "-c", "echo one; echo two >&2; read x; exit 3"}, log)
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
