package archive

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fileSyscalls are the system calls that work on files and directories;
// the others (futex, nanosleep, mmap...) are the Go runtime's and do not
// grow with the number of files in a way worth counting here.
var fileSyscalls = []string{
	"openat", "open", "write", "close", "fchmod", "fchmodat", "fchmodat2", "mkdirat",
	"symlinkat", "fsync", "fdatasync", "sync_file_range", "syncfs", "fcntl", "epoll_ctl",
	"newfstatat", "fstat", "readlinkat", "fchown", "utimensat",
}

// TestSyscallsPerFile extracts a bundle of 1,000 small files (in 10
// directories) and one of none under strace -f -c, and checks what each
// file costs in file system calls: open, write and close, as tar -x makes
// (which also sets owner, times and mode), and nothing else: no flush, no
// chmod (the mode is right at creation when the umask allows), no fcntl or
// epoll_ctl (an *os.File makes both for every file it opens). The whole
// tree is flushed once, by the caller; see writeback.go.
func TestSyscallsPerFile(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Fatal("strace not found (hint: apt-get install strace, see scripts/install-deps.sh)")
	}
	const n = 1000
	count := func(files int) map[string]int {
		ents := []ent{{name: "vmlinux", body: "kernel", mode: 0o755}}
		for i := range files {
			ents = append(ents, file(fmt.Sprintf("modules/6.12.0/d%d/m%04d.ko", i%10, i), strings.Repeat("k", 1000+i)))
		}
		dir := t.TempDir()
		src := filepath.Join(dir, "b.tar.zst")
		if err := os.WriteFile(src, bundle(t, ents...), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		report := filepath.Join(dir, "strace.txt")
		cmd := exec.CommandContext(t.Context(), "strace", "-f", "-c", "-o", report, os.Args[0], "-test.run=^TestExtractHelper$")
		cmd.Env = append(os.Environ(), "BANGER_TEST_EXTRACT="+src+"\n"+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("strace: %v\n%s", err, b)
		}
		return straceCounts(t, report)
	}
	few, many := count(0), count(n)
	var table strings.Builder
	total := 0.0
	for _, sc := range fileSyscalls {
		per := float64(many[sc]-few[sc]) / n
		if per != 0 {
			fmt.Fprintf(&table, "  %-16s %5.2f\n", sc, per)
		}
		total += per
		switch sc {
		case "openat", "write", "close":
			if per > 1.05 {
				t.Errorf("%s: %.2f calls per file, want at most one (and one per directory)", sc, per)
			}
		default:
			if per > 0.05 {
				t.Errorf("%s: %.2f calls per file, want none", sc, per)
			}
		}
	}
	t.Logf("file system calls per file (%d files in 10 directories):\n%s  total            %5.2f", n, table.String(), total)
}

// TestExtractHelper is the process TestSyscallsPerFile traces: it
// extracts the bundle named by BANGER_TEST_EXTRACT ("SRC\nDIR").
func TestExtractHelper(t *testing.T) {
	src, dir, ok := strings.Cut(os.Getenv("BANGER_TEST_EXTRACT"), "\n")
	if !ok {
		t.Skip("only runs as TestSyscallsPerFile's child")
	}
	syscall.Umask(0o022) // the usual one, which takes no bit from a bundle's modes
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ExtractBundle(context.Background(), f, dir, Limits{}); err != nil {
		t.Fatal(err)
	}
}

// straceCounts reads the calls column of an strace -c report.
func straceCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// % time, seconds, usecs/call, calls, [errors,] syscall
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if n, err := strconv.Atoi(fields[3]); err == nil && fields[len(fields)-1] != "total" {
			counts[fields[len(fields)-1]] = n
		}
	}
	if len(counts) == 0 {
		t.Fatalf("no counts in the strace report %s", path)
	}
	return counts
}
