package vmmproc

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

// ID names one process across pid reuse: its pid and its start time
// (clock ticks after boot, /proc/PID/stat field 22), as a VM's state
// records them. The zero ID names no process.
type ID struct {
	PID   int
	Start uint64
}

// StartTime returns the start time of process pid and whether it is a
// live process (not a zombie).
func StartTime(pid int) (start uint64, alive bool) {
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

// Alive reports whether the process still runs: the pid exists, is not a
// zombie, and started when the recorded one did.
func (id ID) Alive() bool {
	if id.PID <= 0 {
		return false
	}
	start, alive := StartTime(id.PID)
	return alive && start == id.Start
}

// signal sends sig to the process if it is still the one id names.
func (id ID) signal(sig syscall.Signal) error {
	if !id.Alive() {
		return nil
	}
	if err := syscall.Kill(id.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling VMM process %d: %w", id.PID, err)
	}
	return nil
}

// WaitExit waits until the process is gone or timeout passes; it reports
// whether it is gone.
func (id ID) WaitExit(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !id.Alive() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the process: SIGTERM, then SIGKILL after grace, and waits for
// it to be gone. A process that is already gone is not an error.
func (id ID) Kill(grace time.Duration) error {
	if err := id.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if id.WaitExit(grace) {
		return nil
	}
	if err := id.signal(syscall.SIGKILL); err != nil {
		return err
	}
	if !id.WaitExit(10 * time.Second) {
		return fmt.Errorf("VMM process %d survived SIGKILL", id.PID)
	}
	return nil
}

// vmmNames are the executables banger runs as VMMs (by base name prefix).
var vmmNames = []string{"qemu-system-", "firecracker", "jailer"}

// Strays returns the live VMM processes whose command line names a file
// in dir (a VM's directory: its sockets, console log and disk are there)
// other than known: VMMs a start lost when it was killed before it saved
// the pid, or a second VMM of the same VM.
func Strays(dir string, known ID) []ID {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needles := []string{dir + "/", strings.ReplaceAll(dir, ",", ",,") + "/"}
	var out []ID
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || (pid == known.PID && known.Alive()) {
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
		if start, alive := StartTime(pid); alive {
			out = append(out, ID{PID: pid, Start: start})
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

// KillStrays kills the stray VMMs of the VM in dir (see Strays) and
// reports how many there were.
func KillStrays(dir string, known ID) (int, error) {
	strays := Strays(dir, known)
	var errs []error
	for _, p := range strays {
		errs = append(errs, p.Kill(0))
	}
	return len(strays), errors.Join(errs...)
}

// Usage is what a process has used of the host: CPU time, all its
// threads', and resident memory.
type Usage struct {
	CPU time.Duration
	RSS uint64 // bytes
}

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture banger runs on.
const userHZ = 100

// Usage returns what the process id names has used so far, or an error
// when it is no longer running.
func (id ID) Usage() (Usage, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(id.PID) + "/stat")
	if err != nil {
		return Usage{}, fmt.Errorf("VMM process %d: %w", id.PID, err)
	}
	u, start, ok := parseUsage(string(data), os.Getpagesize())
	if !ok || start != id.Start {
		return Usage{}, fmt.Errorf("VMM process %d is gone", id.PID)
	}
	return u, nil
}

// parseUsage reads utime and stime (fields 14 and 15), the start time
// (22) and rss (24, in pages of pageSize bytes) out of a /proc/PID/stat
// line, counting from the last ')' as parseStat does; false for a
// zombie's.
func parseUsage(s string, pageSize int) (u Usage, start uint64, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Usage{}, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 22 || f[0] == "Z" || f[0] == "X" {
		return Usage{}, 0, false // gone, or a zombie
	}
	var n [4]uint64
	for j, k := range []int{11, 12, 19, 21} {
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return Usage{}, 0, false
		}
		n[j] = v
	}
	ticks := n[0] + n[1]
	return Usage{CPU: time.Duration(ticks) * (time.Second / userHZ), RSS: n[3] * uint64(pageSize)}, n[2], true
}
