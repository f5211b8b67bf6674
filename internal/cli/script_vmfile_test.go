package cli

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestVMFileScripts runs the VM file scripts that need no guest: the
// mistakes a VM file can hold, and how up, down and vm create -f report
// them. (vm_up.txtar, among the VM scripts, boots the file's VMs.)
func TestVMFileScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "vmfile_*.txtar", map[string]func(*testscript.TestScript, bool, []string){
		"bangerexit": cmdBangerExit,
	}))
}

// bangerexit N ARGS... runs banger ARGS and expects exit status N.
func cmdBangerExit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: bangerexit N ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("bad exit status %q", args[0])
	}
	err = ts.Exec("banger", args[1:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("banger %s: %v", strings.Join(args[1:], " "), err)
	}
	if got != want {
		ts.Fatalf("banger %s: exit status %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}
