package vm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/logtail"
	"github.com/thaloco/banger/internal/sshkey"
	"golang.org/x/crypto/ssh"
)

// runIn runs command in v's guest over SSH and returns its exit status
// and output.
func runIn(t *testing.T, c *ssh.Client, command string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code, err := guest.Run(context.Background(), c, command, nil, &out, &errb)
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	return code, strings.TrimSpace(out.String() + errb.String())
}

func connect(t *testing.T, s *Store, name, key string) *ssh.Client {
	t.Helper()
	target, err := s.SSH(name)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		target.KeyPath = key
	}
	c, err := target.Connect(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// TestSetup boots a real guest (the test kernel with 9p) with a shared
// folder, a read-only one, a copy-in, an init script, an extra SSH key and
// a hostname, and checks each from inside the guest and on the host, then
// that a second start keeps the mounts and does not run the script again.
func TestSetup(t *testing.T) {
	s := newStore(t, nil)
	guesttest.InstallKernelBundle(t, privateKernels(t, s), "test9p", guesttest.Kernel9PBundleName)
	ctx := context.Background()
	tmp := t.TempDir()
	share, roShare, data := filepath.Join(tmp, "share"), filepath.Join(tmp, "ro"), filepath.Join(tmp, "data")
	writeFile(t, filepath.Join(share, "hello.txt"), "hello through 9p\n", 0o644)
	writeFile(t, filepath.Join(roShare, "keep.txt"), "read only\n", 0o644)
	writeFile(t, filepath.Join(data, "sub", "f.txt"), "copied in\n", 0o640)
	script := filepath.Join(tmp, "init.sh")
	writeFile(t, script, "#!/bin/sh\necho \"init-script-ran on $(hostname)\"\necho done > /root/init-done\n", 0o644)
	user, err := sshkey.Ensure(filepath.Join(tmp, "userkey"))
	if err != nil {
		t.Fatal(err)
	}
	o := CreateOptions{Name: "setup", Kernel: "test9p", Rootfs: shared.sshd, MemoryMiB: 256,
		InitScript: script, SSHKeys: []string{strings.TrimSpace(user.Public)}, Hostname: "devbox"}
	for _, spec := range []string{share + ":/src", roShare + ":/ro:ro"} {
		m, err := ParseMount(spec)
		if err != nil {
			t.Fatal(err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	ci, err := ParseCopyIn(data + ":/data")
	if err != nil {
		t.Fatal(err)
	}
	o.CopyIns = []CopyIn{ci}
	if _, err := s.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	// The script is the VM's own copy: changing the file now changes nothing.
	writeFile(t, script, "exit 9\n", 0o644)
	v := startRetry(t, s, "setup")
	if !v.State.InitScriptDone {
		t.Error("the init script is not recorded as done")
	}
	c := connect(t, s, "setup", "")
	checks := []struct{ cmd, want string }{
		{"cat /src/hello.txt", "hello through 9p"},
		{"echo from-guest > /src/out.txt && mkdir -p /src/d && chmod 700 /src/d && stat -c %a /src/d", "700"},
		{"cat /ro/keep.txt", "read only"},
		{"cat /data/sub/f.txt && stat -c %a /data/sub/f.txt", "copied in\n640"},
		{"hostname", "devbox"},
		{"cat /root/init-done", "done"},
		{"grep -c ' 9p ' /proc/mounts", "2"},
	}
	for _, ch := range checks {
		if code, out := runIn(t, c, ch.cmd); code != 0 || out != ch.want {
			t.Errorf("%s: exit %d, %q; want %q", ch.cmd, code, out, ch.want)
		}
	}
	if got, err := os.ReadFile(filepath.Join(share, "out.txt")); err != nil || string(got) != "from-guest\n" {
		t.Errorf("the guest's write through the mount: %q, %v", got, err)
	}
	for _, cmd := range []string{"touch /ro/new", "touch /data/new"} {
		if code, out := runIn(t, c, cmd); code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Errorf("%s in a read-only folder: exit %d, %q; want a read-only error", cmd, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(roShare, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the read-only share got a file: %v", err)
	}
	// The user's own key logs in.
	connect(t, s, "setup", user.PrivatePath)
	log := logtail.ReadFrom(v.ConsoleLog(), 0, 1<<20)
	if !strings.Contains(log, "init-script-ran on devbox") {
		t.Errorf("the init script's output is not in the console log:\n%s", strings.Join(logtail.Lines(log, 15), "\n"))
	}
	_ = c.Close()

	// A second start: mounts come back, the script does not run again.
	if _, err := s.Stop(ctx, "setup", StopOptions{Timeout: 60 * time.Second}); err != nil {
		t.Fatal(err)
	}
	v = startRetry(t, s, "setup")
	c = connect(t, s, "setup", "")
	if code, out := runIn(t, c, "cat /src/out.txt /data/sub/f.txt"); code != 0 || out != "from-guest\ncopied in" {
		t.Errorf("after a restart: exit %d, %q", code, out)
	}
	if log := logtail.ReadFrom(v.ConsoleLog(), v.State.ConsoleOffset, 1<<20); strings.Contains(log, "init-script-ran") {
		t.Error("the init script ran again at the second start")
	}
}

// TestInitScriptFails: a failing init script fails the start, quoting its
// last lines and exit status, and leaves the VM stopped with no VMM.
func TestInitScriptFails(t *testing.T) {
	s := newStore(t, nil)
	script := filepath.Join(t.TempDir(), "bad.sh")
	writeFile(t, script, "echo step one\necho 'cannot find the widget' >&2\nexit 3\n", 0o644)
	if _, err := s.Create(context.Background(), CreateOptions{Name: "badinit", Kernel: "test", Rootfs: shared.sshd, MemoryMiB: 256, InitScript: script}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Start(context.Background(), "badinit", StartOptions{Timeout: bootTimeout})
	var se *SetupError
	if !errors.As(err, &se) || se.Status != 3 || !strings.Contains(err.Error(), "cannot find the widget") || !strings.Contains(err.Error(), `VM "badinit"`) {
		t.Fatalf("start error %v, want the init script's exit 3 and its last lines", err)
	}
	v := status(t, s, "badinit")
	if v.State.Status != StatusStopped || v.State.PID != 0 || v.State.InitScriptDone {
		t.Errorf("after the failed script: status %s, pid %d, done %v", v.State.Status, v.State.PID, v.State.InitScriptDone)
	}
}

// TestSetupCreateErrors: what a create refuses before anything boots.
func TestSetupCreateErrors(t *testing.T) {
	s := newStore(t, nil)
	dir := t.TempDir()
	m, err := ParseMount(dir + ":/src")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "s.sh")
	writeFile(t, script, "true\n", 0o644)
	for _, tc := range []struct {
		name string
		o    CreateOptions
		want string
	}{
		{"fc", CreateOptions{Kernel: "test", Rootfs: shared.sshd, VMM: VMMFirecracker, Mounts: []Mount{m}}, "firecracker has no shared-folder device"},
		{"nossh", CreateOptions{Kernel: "test", Rootfs: shared.plain, InitScript: script}, "no SSH server"},
		{"nonet", CreateOptions{Kernel: "test", Rootfs: shared.sshd, Net: NetNone, Mounts: []Mount{m}}, "no network"},
		{"twice", CreateOptions{Kernel: "test", Rootfs: shared.sshd, Mounts: []Mount{m, m}}, "used by both"},
		{"badhost", CreateOptions{Kernel: "test", Rootfs: shared.sshd, Hostname: "-bad-"}, "invalid hostname"},
		{"badkey", CreateOptions{Kernel: "test", Rootfs: shared.sshd, SSHKeys: []string{"ssh-ed25519 nonsense"}}, "not one public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Name = tc.name
			_, err := s.Create(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create: %v, want an error with %q", err, tc.want)
			}
			if _, err := os.Stat(s.Layout.VM(tc.name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused create left %s: %v", s.Layout.VM(tc.name), err)
			}
		})
	}
	for _, bad := range []string{dir, dir + ":relative", dir + ":/", dir + ":/a b", filepath.Join(dir, "missing") + ":/x", script + ":/x", dir + ":/x:rx"} {
		if _, err := ParseMount(bad); err == nil {
			t.Errorf("ParseMount(%q) accepted it", bad)
		}
	}
}
