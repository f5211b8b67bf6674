package consolerelay

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/qemu"
	"github.com/thaloco/banger/internal/vmm/vmmproc"
)

// relayEnv turns this test binary into the relay process (see TestMain),
// which Start runs with the log path as its last argument.
const relayEnv = "BANGER_TEST_CONSOLE_RELAY"

func TestMain(m *testing.M) {
	if os.Getenv(relayEnv) != "" {
		if err := Main(context.Background(), os.Args[len(os.Args)-1]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startRelay starts this test binary as the relay for socket and log.
func startRelay(t *testing.T, socket, log string) (*Relay, *os.File) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(relayEnv, "1")
	r, tty, err := Start(t.Context(), []string{exe}, socket, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Kill() })
	return r, tty
}

// readUntil reads r until its output contains want; it fails the test
// after timeout.
func readUntil(t *testing.T, c net.Conn, want string, timeout time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), want) {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("waiting for %q on the console: %v; got:\n%s", want, err, got.String())
		}
	}
	return got.String()
}

// TestRelay plays the VMM on the terminal side by hand: output reaches the
// log and the attached client, the client's keys reach the VMM unchanged
// (raw terminal), a second client is turned away, a client can detach and
// another attach, and the relay exits, keeping the VMM's last words, when
// the VMM closes its terminal.
func TestRelay(t *testing.T) {
	dir := t.TempDir()
	sock, log := filepath.Join(dir, "console.sock"), filepath.Join(dir, "console.log")
	r, tty := startRelay(t, sock, log)

	if _, err := tty.WriteString("early boot line\n"); err != nil {
		t.Fatal(err)
	}
	c1, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	// The relay takes c1 as its client in a goroutine of its own, apart
	// from the one that reads the terminal: output sent before then
	// reaches no client. Say the line again until c1 hears it.
	var heard strings.Builder
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(heard.String(), "login: \n"); {
		if time.Now().After(deadline) {
			t.Fatalf("the first client never got the console's output; got %q", heard.String())
		}
		if _, err := tty.WriteString("login: \n"); err != nil {
			t.Fatal(err)
		}
		_ = c1.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		for !strings.Contains(heard.String(), "login: \n") {
			n, err := c1.Read(buf)
			heard.Write(buf[:n])
			if err != nil {
				break
			}
		}
	}

	// Keys typed in the client arrive byte for byte: raw mode, so no
	// echo back, no line buffering, Ctrl-C (0x03) is data.
	if _, err := c1.Write([]byte("ls\x03\r")); err != nil {
		t.Fatal(err)
	}
	in := make([]byte, 4)
	if _, err := io.ReadFull(tty, in); err != nil {
		t.Fatal(err)
	}
	if string(in) != "ls\x03\r" {
		t.Errorf("the VMM read %q, want the keys unchanged %q", in, "ls\x03\r")
	}

	c2, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	busy := readUntil(t, c2, BusyMessage, 30*time.Second)
	if b, _ := io.ReadAll(c2); len(b) != 0 {
		t.Errorf("the second client got more than the busy message: %q", busy+string(b))
	}
	c2.Close()

	// The first client leaves; a new one is served.
	c1.Close()
	var c3 net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c3, err = net.Dial("unix", sock); err != nil {
			t.Fatal(err)
		}
		if _, err := tty.WriteString("ping\n"); err != nil {
			t.Fatal(err)
		}
		_ = c3.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, _ := bufio.NewReader(c3).ReadString('\n')
		if b == "ping\n" {
			break
		}
		c3.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a client attaching after the first one left got %q, not the console", b)
		}
	}
	defer c3.Close()

	// The VMM's last words, then it exits (closes its terminal).
	if _, err := tty.WriteString("reboot: Restarting system\n"); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	if !r.Wait(30 * time.Second) {
		t.Fatal("the relay still runs 30s after the VMM closed its terminal")
	}
	rest, _ := io.ReadAll(c3)
	if !strings.Contains(string(rest), "reboot: Restarting system") {
		t.Errorf("the client did not get the VMM's last output before the hang-up: %q", rest)
	}
	got := readFile(t, log)
	for _, want := range []string{"early boot line\n", "login: \n", "ping\n", "reboot: Restarting system\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("console log lacks %q:\n%s", want, got)
		}
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("the console socket still accepts connections after the relay exited")
	}
}

// TestStartRefusesLiveSocket: a socket something answers on belongs to a
// running relay and is not taken over; a stale one is replaced.
func TestStartRefusesLiveSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "console.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Start(context.Background(), []string{"/bin/true"}, sock, filepath.Join(dir, "log"))
	if err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Fatalf("Start on a live socket: %v, want an in-use error", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // now stale: the file is there, nobody listens
	if _, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	}
	r, tty := startRelay(t, sock, filepath.Join(dir, "log"))
	tty.Close()
	if !r.Wait(30 * time.Second) {
		t.Error("the relay did not exit when its terminal was closed before any VMM used it")
	}

	long := filepath.Join(dir, strings.Repeat("x", 120))
	if _, _, err := Start(context.Background(), []string{"/bin/true"}, long, filepath.Join(dir, "log")); err == nil ||
		!strings.Contains(err.Error(), "longer than") {
		t.Errorf("Start with a %d-byte socket path: %v, want a length error", len(long), err)
	}
}

// TestMainWithoutDescriptors: run by hand, the relay says how it is meant
// to be started instead of misbehaving.
func TestMainWithoutDescriptors(t *testing.T) {
	// Descriptors 3 and 4 may well be open in the test process; run a
	// fresh copy of the binary with nothing beyond stdio.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, filepath.Join(t.TempDir(), "log"))
	cmd.Env = append(os.Environ(), relayEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "started by banger") {
		t.Errorf("relay without its descriptors: %v, output %q; want a failure naming how it is started", err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// TestRealVMMOnStdio boots the shared test kernel for real under QEMU with
// its serial port on stdio, as Firecracker has it, through the relay: the
// boot reaches the log, a client gets a shell prompt, runs a command in
// the guest, and the relay ends when the guest reboots and QEMU exits.
func TestRealVMMOnStdio(t *testing.T) {
	dir := t.TempDir()
	m := vmm.Machine{
		Name: "relay", Kernel: guesttest.ExtractKernel(t, filepath.Join(dir, "k")),
		Rootfs: filepath.Join(dir, "rootfs.ext4"), CPUs: 1, MemoryMiB: 128,
		Dir: dir, ConsoleLog: filepath.Join(dir, "console.log"), Accel: "tcg",
		Net: vmm.Network{Mode: "none"},
	}
	guesttest.BuildRootfs(t, m.Rootfs, guesttest.Rootfs{})
	argv, err := (&qemu.Driver{}).Args(m)
	if err != nil {
		t.Fatal(err)
	}
	replaced := false
	for i, a := range argv {
		if strings.HasPrefix(a, "socket,id=con,") {
			argv[i], replaced = "stdio,id=con,signal=off", true
		}
	}
	if !replaced {
		t.Fatalf("no console chardev in QEMU's arguments %q", argv)
	}
	sock := filepath.Join(dir, "console.sock")
	r, tty := startRelay(t, sock, m.ConsoleLog)
	p, err := vmmproc.SpawnWith(argv, m.ConsoleLog, vmmproc.Options{Terminal: tty})
	tty.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)

	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(readFile(t, m.ConsoleLog), guesttest.ReadyMarker) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the console within 90s; log:\n%s", guesttest.ReadyMarker, readFile(t, m.ConsoleLog))
		}
		select {
		case <-p.Done():
			t.Fatalf("QEMU exited: %v; log:\n%s", p.Err(), readFile(t, m.ConsoleLog))
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The console shell may still be starting: ask until it answers.
	var out string
	for i := 0; i < 10 && !strings.Contains(out, "relay-42"); i++ {
		if _, err := io.WriteString(c, "echo relay-$((6*7))\r"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 4096)
		for !strings.Contains(out, "relay-42") {
			n, err := c.Read(b)
			out += string(b[:n])
			if err != nil {
				break
			}
		}
	}
	// (The echoed command line reads "relay-$((6*7))": only the
	// guest's answer has "relay-42".)
	if !strings.Contains(out, "relay-42") {
		t.Fatalf("the guest shell did not run the command typed into the relay; got %q", out)
	}
	if _, err := io.WriteString(c, "reboot -f\r"); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(60 * time.Second) {
		t.Fatal("QEMU still runs 60s after reboot -f")
	}
	if !r.Wait(30 * time.Second) {
		t.Fatal("the relay still runs 30s after QEMU exited")
	}
	if log := readFile(t, m.ConsoleLog); !strings.Contains(log, "relay-42") || !strings.Contains(log, "reboot: Restarting system") {
		t.Errorf("console log lacks the session or the reboot:\n%s", log)
	}
}
