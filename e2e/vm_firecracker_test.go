package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeFirecracker builds the Firecracker driver's test binary, which plays
// a FAKE Firecracker (an API server checked against firecracker-api.yaml
// and a line-answering guest on its serial console; see
// internal/vmm/firecracker/fake_test.go) when run as "firecracker" with
// $BANGER_FAKE_FIRECRACKER set. Firecracker itself cannot be installed on
// the machines this suite runs on. It returns a PATH directory holding it
// and the environment variable that configures it.
func fakeFirecracker(t *testing.T) (binDir, envVar string) {
	t.Helper()
	dir := t.TempDir()
	binDir = filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testContext(t), "go", "test", "-c", "-o", filepath.Join(binDir, "firecracker"), "./internal/vmm/firecracker")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fake firecracker: %v\n%s", err, out)
	}
	cfg, _ := json.Marshal(map[string]string{
		"Spec":   filepath.Join(sharedDir(t), "reference", "firecracker", "firecracker-api.yaml"),
		"Record": filepath.Join(dir, "record.jsonl"),
	})
	cfgFile := filepath.Join(dir, "fake.json")
	if err := os.WriteFile(cfgFile, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return binDir, "BANGER_FAKE_FIRECRACKER=" + cfgFile
}

// TestVMFirecrackerConsole runs a Firecracker VM through the real banger
// binary with the fake Firecracker on PATH: banger's console relay (the
// binary re-run as "banger internal console-relay") holds Firecracker's
// serial terminal, "vm console" types into the guest and reads its answer,
// Ctrl-] detaches, "vm stop" is a Ctrl-Alt-Del the guest answers by
// exiting, and no relay or socket is left behind.
func TestVMFirecrackerConsole(t *testing.T) {
	e := newVMEnv(t)
	ctx := testContext(t)
	bin, fakeVar := fakeFirecracker(t)
	env := append(append([]string{}, e.env...), fakeVar, "PATH="+bin+":"+os.Getenv("PATH"))
	banger := func(args ...string) result {
		t.Helper()
		return mustRun(t, ctx, env, bangerBin(t), args...)
	}

	banger("vm", "create", "fc", "--vmm", "firecracker", "--net", "none", "--kernel", "test", "--rootfs", e.plain,
		"--ready-marker", "fake firecracker: guest booted")
	banger("vm", "start", "fc")
	st := e.vmState(t, "fc")
	sock, _ := st["console_socket"].(string)
	if sock != filepath.Join(e.state, "vms", "fc", "console.sock") {
		t.Fatalf("console socket %q, want console.sock in the VM's directory (state %v)", sock, st)
	}

	con := exec.CommandContext(ctx, bangerBin(t), "vm", "console", "fc")
	con.Env = env
	in, err := con.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	con.Stdout = outW
	var stderr strings.Builder
	con.Stderr = &stderr
	if err := con.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := `fake guest: you typed "hostname"`
	got := waitLine(t, lines, in, "hostname\r", want)
	if !got {
		t.Fatalf("vm console: the guest's answer %q never came; stderr:\n%s", want, stderr.String())
	}
	if _, err := in.Write([]byte{0x1d}); err != nil { // Ctrl-]
		t.Fatal(err)
	}
	if err := con.Wait(); err != nil {
		t.Fatalf("vm console after Ctrl-]: %v\n%s", err, stderr.String())
	}
	outW.Close()
	if !strings.Contains(stderr.String(), "detached from VM fc") {
		t.Errorf("vm console did not say it detached:\n%s", stderr.String())
	}
	log := banger("vm", "logs", "fc").stdout
	for _, w := range []string{"fake firecracker: guest booted", "console on a terminal: true", want} {
		if !strings.Contains(log, w) {
			t.Errorf("vm logs lacks %q:\n%s", w, log)
		}
	}

	r := banger("vm", "stop", "fc", "--timeout", "20s")
	t.Logf("vm stop: %s%s", r.stdout, r.stderr)
	if strings.Contains(r.stderr, "kill") {
		t.Errorf("vm stop had to kill the fake firecracker instead of a Ctrl-Alt-Del:\n%s", r.stderr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("console socket %s still exists after vm stop", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The relay exits by itself once it sees the terminal hang up, a
	// moment after Firecracker has exited: vm stop does not wait for it.
	relay := "internal console-relay " + filepath.Join(e.state, "vms", "fc")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := exec.CommandContext(ctx, "pgrep", "-f", relay).Output()
		if len(out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a console relay outlived the VM by 30s: pids %s", out)
			break
		}
	}
	banger("vm", "rm", "fc")
}

// waitLine types input (again every second) until a line containing want
// arrives, for up to 20s; the console may need a moment to attach.
func waitLine(t *testing.T, lines <-chan string, in io.Writer, input, want string) bool {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if _, err := io.WriteString(in, input); err != nil {
			t.Fatal(err)
		}
		tick := time.After(time.Second)
	wait:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				if strings.Contains(l, want) {
					return true
				}
			case <-tick:
				break wait
			case <-deadline:
				return false
			}
		}
	}
}
