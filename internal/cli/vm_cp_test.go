package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/sshkey"
)

// cpEnv runs banger in-process against one state directory.
type cpEnv struct {
	env map[string]string
}

func (e *cpEnv) run(ctx context.Context, stderr io.Writer, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	g := &globalOptions{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return e.env[k] }}
	if stderr != nil {
		g.Stderr = stderr
	}
	code := run(ctx, g, args)
	return code, out.String(), errb.String()
}

// banger runs banger and fails the test unless it exits 0.
func (e *cpEnv) banger(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := e.run(t.Context(), nil, args...)
	if code != 0 {
		t.Fatalf("banger %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestVMCp boots one guest (dropbear with OpenSSH's sftp-server) and runs
// banger vm cp against it: a tree both ways, every failure the command
// names with its hint and exit status, the progress bar on a terminal,
// Ctrl-C, and a VM that has stopped.
func TestVMCp(t *testing.T) {
	dir := t.TempDir()
	e := &cpEnv{env: map[string]string{
		"XDG_STATE_HOME":     filepath.Join(dir, "state"),
		"BANGER_KERNELS_DIR": filepath.Join(dir, "kernels"),
		"HOME":               filepath.Join(dir, "home"),
	}}
	guesttest.InstallKernel(t, e.env["BANGER_KERNELS_DIR"], "test")
	kp, err := sshkey.Ensure(filepath.Join(dir, "state", "banger", "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: kp.Public, SFTP: true, SizeMiB: 64,
		Init: "mkdir -p /small && mount -t tmpfs -o size=4m tmpfs /small"})
	// /locked: ext4's immutable flag, which even root cannot write through.
	for _, req := range []string{"mkdir /locked", "set_inode_field /locked flags 0x80010"} {
		if out, err := exec.CommandContext(t.Context(), "debugfs", "-w", "-R", req, rootfs).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v: %s", req, err, out)
		}
	}
	e.banger(t, "vm", "create", "cpvm", "--kernel", "test", "--rootfs", rootfs, "--memory", "256M")
	t.Cleanup(func() { e.run(context.Background(), nil, "vm", "rm", "--force", "cpvm") })
	if code, _, errs := e.run(t.Context(), nil, "vm", "start", "cpvm"); code != 0 {
		if !strings.Contains(errs, "was not ready after") {
			t.Fatalf("vm start: %s", errs)
		}
		t.Logf("REPORT: guest boot not ready in time, retrying once: %s", errs)
		e.banger(t, "vm", "start", "cpvm")
	}

	// A tree there and back; quiet (no terminal).
	src := filepath.Join(dir, "tree")
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"a.txt", 0o600}, {"sub/b.sh", 0o755}} {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+f.name+"\n"), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errs := e.run(t.Context(), nil, "vm", "cp", "-r", src, "cpvm:/root/"); code != 0 || out != "" || errs != "" {
		t.Fatalf("vm cp -r to the guest: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if got := e.banger(t, "vm", "ssh", "cpvm", "--", "stat -c '%a %n' /root/tree/a.txt /root/tree/sub /root/tree/sub/b.sh; cat /root/tree/sub/b.sh"); got != "600 /root/tree/a.txt\n700 /root/tree/sub\n755 /root/tree/sub/b.sh\ncontent of sub/b.sh\n" {
		t.Errorf("in the guest: %q", got)
	}
	back := filepath.Join(dir, "back")
	if code, _, errs := e.run(t.Context(), nil, "vm", "cp", "-r", "cpvm:~/tree", back); code != 0 || errs != "" {
		t.Fatalf("vm cp -r from the guest: exit %d: %s", code, errs)
	}
	if out, err := exec.CommandContext(t.Context(), "diff", "-r", src, back).CombinedOutput(); err != nil {
		t.Errorf("the tree came back different: %v: %s", err, out)
	}

	e.banger(t, "vm", "ssh", "cpvm", "--", "dd if=/dev/urandom of=/root/rand.bin bs=1M count=12 2>/dev/null")
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, bytes.Repeat([]byte("0123456789abcdef"), 512<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing in the guest", []string{"cpvm:/nope/x", dir},
			`banger: reading cpvm:/nope/x: no such file or directory (hint: "banger vm ssh cpvm -- ls -la /nope" shows what is there)`},
		{"missing on the host", []string{filepath.Join(dir, "nope"), "cpvm:"},
			"banger: reading " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"a guest directory without -r", []string{"cpvm:/root", dir},
			"banger: copying cpvm:/root: is a directory (hint: add -r to copy directories)"},
		{"immutable directory", []string{big, "cpvm:/locked"},
			"banger: writing into cpvm:/locked: permission denied (hint: banger copies as root in the guest, so the guest's kernel refused even root"},
		{"guest disk full", []string{big, "cpvm:/small/"},
			`banger: writing cpvm:/small/big.bin: no space left on device (hint: free space in the guest ("banger vm ssh cpvm -- df -h /small" shows it)`},
		{"several sources into a file", []string{big, src + "/a.txt", "cpvm:/root/rand.bin"},
			`banger: copying several sources into cpvm:/root/rand.bin: not a directory (hint: with several sources, or a DST ending in "/", DST must be an existing directory)`},
	} {
		code, _, errs := e.run(t.Context(), nil, append([]string{"vm", "cp"}, tc.args...)...)
		if code != 1 || !strings.HasPrefix(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and one line starting %q", tc.name, code, errs, tc.want)
		}
		t.Logf("%s: %s", tc.name, strings.TrimSpace(errs))
	}
	if left := e.banger(t, "vm", "ssh", "cpvm", "--", "ls -A /small /locked"); left != "/locked:\n\n/small:\n" {
		t.Errorf("failed copies left %q in the guest", left)
	}

	// On a terminal, a progress bar on stderr.
	master, tty := openPTY(t)
	var seen bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = io.Copy(&seen, master) }()
	code, _, _ := e.run(t.Context(), tty, "vm", "cp", "cpvm:/root/rand.bin", filepath.Join(dir, "rand.bin"))
	tty.Close()
	wg.Wait()
	if code != 0 || !strings.Contains(seen.String(), "copying from cpvm [") || !strings.Contains(seen.String(), "100% 12.0 MiB/12.0 MiB") {
		t.Errorf("on a terminal: exit %d, %q", code, seen.String())
	}

	// Ctrl-C half-way: exit 130 and nothing left on the host.
	out := filepath.Join(dir, "interrupted")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		defer cancel()
		for ctx.Err() == nil {
			if parts, _ := filepath.Glob(filepath.Join(out, ".banger-cp-*", "rand.bin")); len(parts) > 0 {
				if fi, err := os.Stat(parts[0]); err == nil && fi.Size() > 0 {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	code, _, errs := e.run(ctx, nil, "vm", "cp", "cpvm:/root/rand.bin", out)
	if code != 130 || errs != "banger: interrupted\n" {
		t.Errorf("interrupted: exit %d, %q", code, errs)
	}
	if left, _ := os.ReadDir(out); len(left) > 0 {
		t.Errorf("the interrupted copy left %v", left)
	}

	// Without sftp-server in the guest.
	e.banger(t, "vm", "ssh", "cpvm", "--", "mv "+guesttest.DropbearSFTPServer+" /root/off")
	code, _, errs = e.run(t.Context(), nil, "vm", "cp", big, "cpvm:")
	if code != 1 || !strings.HasPrefix(errs, `banger: VM "cpvm": the guest's SSH server offers no SFTP service (`) || !strings.Contains(errs, "(hint: install an SFTP server in the image") {
		t.Errorf("without sftp-server: exit %d, %q", code, errs)
	}
	t.Logf("without sftp-server: %s", strings.TrimSpace(errs))
	e.banger(t, "vm", "ssh", "cpvm", "--", "mv /root/off "+guesttest.DropbearSFTPServer)

	// A stopped VM.
	e.banger(t, "vm", "stop", "--force", "cpvm")
	code, _, errs = e.run(t.Context(), nil, "vm", "cp", big, "cpvm:")
	if code != 1 || !strings.Contains(errs, `VM "cpvm" is not running (status stopped) (hint: start it with "banger vm start cpvm")`) {
		t.Errorf("stopped VM: exit %d, %q", code, errs)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, tty
}
