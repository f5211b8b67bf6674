package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStart returns the start time of process pid (clock ticks after
// boot, /proc/PID/stat field 22) and whether it is a live process (not a
// zombie).
func procStart(pid int) (start uint64, alive bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	start, alive = parseStat(string(data))
	if !alive && start != 0 && threads(pid) > 1 {
		// A thread-group leader that has exited shows as a zombie while
		// its other threads still tear down (QEMU's vCPU and I/O threads
		// can take seconds), and the process keeps its sockets, ports and
		// disk lock until the last one is gone: it still counts as alive.
		alive = true
	}
	return start, alive
}

// threads is the number of threads of process pid, 0 if unknown.
func threads(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// parseStat reads the state and start time out of a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseStat(s string) (start uint64, alive bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return start, f[0] != "Z" && f[0] != "X"
}

// vmmAlive reports whether the VMM recorded in st still runs: the pid
// exists, is not a zombie, and started when the recorded one did.
func vmmAlive(st State) bool {
	if st.PID <= 0 {
		return false
	}
	start, alive := procStart(st.PID)
	return alive && start == st.PIDStart
}

// signalVMM sends sig to the recorded VMM if it is still that process.
func signalVMM(st State, sig syscall.Signal) error {
	if !vmmAlive(st) {
		return nil
	}
	if err := syscall.Kill(st.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling VMM process %d: %w", st.PID, err)
	}
	return nil
}

// waitExit waits until the recorded VMM is gone or timeout passes; it
// reports whether it is gone.
func waitExit(st State, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !vmmAlive(st) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killVMM ends the recorded VMM: SIGTERM, then SIGKILL after grace, and
// waits for it to be gone.
func killVMM(st State, grace time.Duration) error {
	if err := signalVMM(st, syscall.SIGTERM); err != nil {
		return err
	}
	if waitExit(st, grace) {
		return nil
	}
	if err := signalVMM(st, syscall.SIGKILL); err != nil {
		return err
	}
	if !waitExit(st, 10*time.Second) {
		return fmt.Errorf("VMM process %d survived SIGKILL", st.PID)
	}
	return nil
}

// vmmNames are the executables banger runs as VMMs (by base name prefix).
var vmmNames = []string{"qemu-system-", "firecracker", "jailer"}

// strayVMMs returns the live VMM processes whose command line names a
// file in dir (a VM's directory: its sockets, console log and disk are
// there) other than the one st records: VMMs a start lost when it was
// killed before it saved the pid, or a second VMM of the same VM.
func strayVMMs(dir string, st State) []State {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needles := []string{dir + "/", strings.ReplaceAll(dir, ",", ",,") + "/"}
	var out []State
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || (pid == st.PID && vmmAlive(st)) {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !isVMM(args[0]) || !mentions(args[1:], needles) {
			continue
		}
		if start, alive := procStart(pid); alive {
			out = append(out, State{PID: pid, PIDStart: start})
		}
	}
	return out
}

func isVMM(argv0 string) bool {
	base := filepath.Base(argv0)
	for _, n := range vmmNames {
		if strings.HasPrefix(base, n) {
			return true
		}
	}
	return false
}

func mentions(args, needles []string) bool {
	for _, a := range args {
		for _, n := range needles {
			if strings.Contains(a, n) {
				return true
			}
		}
	}
	return false
}

// killStrays kills the stray VMMs of the VM in dir (see strayVMMs) and
// reports how many there were.
func killStrays(dir string, st State) (int, error) {
	strays := strayVMMs(dir, st)
	var errs []error
	for _, p := range strays {
		errs = append(errs, killVMM(p, 0))
	}
	return len(strays), errors.Join(errs...)
}
