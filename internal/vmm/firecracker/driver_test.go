package firecracker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/vmm"
)

// call is an expected API request; body is JSON ("" for none).
type call struct{ method, path, body string }

// checkCalls compares the API requests the fake saw with want, bodies as
// JSON values, and that each was accepted.
func checkCalls(t *testing.T, e *testEnv, want []call) {
	t.Helper()
	var got []recordEntry
	for _, r := range e.records(t) {
		if r.Method != "" {
			got = append(got, r)
		}
	}
	for i := 0; i < max(len(got), len(want)); i++ {
		if i >= len(got) {
			t.Errorf("request %d: missing, want %s %s %s", i, want[i].method, want[i].path, want[i].body)
			continue
		}
		g := got[i]
		if i >= len(want) {
			t.Errorf("request %d: unexpected %s %s %s", i, g.Method, g.Path, g.Body)
			continue
		}
		w := want[i]
		if g.Method != w.method || g.Path != w.path || !sameJSON(t, g.Body, w.body) {
			t.Errorf("request %d:\n got %s %s %s\nwant %s %s %s", i, g.Method, g.Path, g.Body, w.method, w.path, w.body)
		}
		if g.Status >= 300 {
			t.Errorf("request %d %s %s: fake answered %d: %s", i, g.Method, g.Path, g.Status, g.Fault)
		}
	}
}

func sameJSON(t *testing.T, a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var va, vb any
	must(t, json.Unmarshal([]byte(a), &va))
	must(t, json.Unmarshal([]byte(b), &vb))
	return reflect.DeepEqual(va, vb)
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

const wantArgs = "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd quiet"

func TestStartAndShutdown(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	m := e.m
	m.Initrd = e.file(t, "initrd.img", 0o644)
	m.Net = vmmTap("tap-vm1", "02:fc:00:00:00:01")
	d := &Driver{VsockCID: 3}

	p, err := d.Start(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	pids := e.pids(t)
	if len(pids) != 1 || p.PID != pids[0] {
		t.Errorf("Process.PID = %d, fake firecracker pids %v", p.PID, pids)
	}
	if want := filepath.Join(m.Dir, "fc.sock"); p.APISocket != want {
		t.Errorf("APISocket = %s, want %s", p.APISocket, want)
	}
	if got := d.VsockPath(m); got != filepath.Join(m.Dir, "vsock.sock") {
		t.Errorf("VsockPath = %s", got)
	}
	must(t, d.Shutdown(context.Background(), m, p))
	waitGone(t, p.PID)

	checkCalls(t, e, []call{
		{"GET", "/", ""},
		{"PUT", "/logger", js(map[string]any{"log_path": filepath.Join(m.Dir, "firecracker.log"), "level": "Info", "show_level": true, "show_log_origin": false})},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256}`},
		{"PUT", "/boot-source", js(map[string]any{"kernel_image_path": m.Kernel, "boot_args": wantArgs, "initrd_path": m.Initrd})},
		{"PUT", "/drives/rootfs", js(map[string]any{"drive_id": "rootfs", "path_on_host": m.Rootfs, "is_root_device": true, "is_read_only": false})},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap-vm1","guest_mac":"02:fc:00:00:00:01"}`},
		{"PUT", "/vsock", js(map[string]any{"guest_cid": 3, "uds_path": filepath.Join(m.Dir, "vsock.sock")})},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
		{"PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`},
	})
	// Firecracker's serial console is its stdout: it lands in ConsoleLog.
	if log, _ := os.ReadFile(m.ConsoleLog); !strings.Contains(string(log), "fake firecracker: guest booted") {
		t.Errorf("console log %q lacks the fake's console output", log)
	}
	// Shutting down a VM that is gone says so.
	if err := d.Shutdown(context.Background(), m, p); err == nil {
		t.Error("Shutdown of an exited firecracker succeeded")
	}
}

// TestStartAndShutdownARM64: an arm64 guest gets the aarch64 boot
// arguments, the same configuration sequence otherwise, and Shutdown sends
// nothing (Firecracker's SendCtrlAltDel is x86_64 only): it says so with
// vmm.ErrNoShutdown, and Firecracker keeps running.
func TestStartAndShutdownARM64(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	m := e.m
	m.Arch = "arm64"
	m.Net = vmmTap("tap-vm1", "02:fc:00:00:00:01")
	d := &Driver{}
	p, err := d.Start(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Shutdown(context.Background(), m, p)
	if !errors.Is(err, vmm.ErrNoShutdown) || !strings.Contains(err.Error(), "x86_64 only") {
		t.Fatalf("Shutdown = %v; want vmm.ErrNoShutdown", err)
	}
	time.Sleep(100 * time.Millisecond)
	if syscall.Kill(p.PID, 0) != nil {
		t.Error("firecracker exited after Shutdown of an arm64 guest")
	}
	checkCalls(t, e, []call{
		{"GET", "/", ""},
		{"PUT", "/logger", js(map[string]any{"log_path": filepath.Join(m.Dir, "firecracker.log"), "level": "Info", "show_level": true, "show_log_origin": false})},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256}`},
		{"PUT", "/boot-source", js(map[string]any{"kernel_image_path": m.Kernel, "boot_args": "console=ttyS0 panic=1 pci=off quiet"})},
		{"PUT", "/drives/rootfs", js(map[string]any{"drive_id": "rootfs", "path_on_host": m.Rootfs, "is_root_device": true, "is_read_only": false})},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap-vm1","guest_mac":"02:fc:00:00:00:01"}`},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
	})
}

// Firecracker before v1.0 requires machine-config's ht_enabled and vsock's
// vsock_id; the fake, reporting 0.24.6, checks against that older schema.
func TestStartFirecrackerV024(t *testing.T) {
	e := newTestEnv(t, fakeConfig{Version: "0.24.6"})
	m := e.m
	if _, err := (&Driver{VsockCID: 7}).Start(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, e, []call{
		{"GET", "/", ""},
		{"PUT", "/logger", js(map[string]any{"log_path": filepath.Join(m.Dir, "firecracker.log"), "level": "Info", "show_level": true, "show_log_origin": false})},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256,"ht_enabled":false}`},
		{"PUT", "/boot-source", js(map[string]any{"kernel_image_path": m.Kernel, "boot_args": wantArgs})},
		{"PUT", "/drives/rootfs", js(map[string]any{"drive_id": "rootfs", "path_on_host": m.Rootfs, "is_root_device": true, "is_read_only": false})},
		{"PUT", "/vsock", js(map[string]any{"vsock_id": "vsock0", "guest_cid": 7, "uds_path": filepath.Join(m.Dir, "vsock.sock")})},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
	})
}

func TestStartAPIFault(t *testing.T) {
	const msg = "Unable to create the block device: BackingFile(Os { code: 13, kind: PermissionDenied })"
	e := newTestEnv(t, fakeConfig{Faults: map[string]string{"/drives/rootfs": msg}})
	_, err := (&Driver{}).Start(context.Background(), e.m)
	if err == nil {
		t.Fatal("Start succeeded despite the fault")
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.FaultMessage != msg || apiErr.Path != "/drives/rootfs" {
		t.Fatalf("error %v (%#v) does not carry the 400 fault", err, apiErr)
	}
	if !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), `VM "vm1"`) {
		t.Errorf("error %q lacks the fault message or the VM name", err)
	}
	for _, r := range e.records(t) {
		if r.Path == "/actions" {
			t.Errorf("InstanceStart sent after a failed step")
		}
	}
	waitGone(t, e.pids(t)[0]) // a failed start leaves no Firecracker behind
}

func TestStartProcessDiesBeforeSocket(t *testing.T) {
	e := newTestEnv(t, fakeConfig{Die: true})
	must(t, os.MkdirAll(e.m.Dir, 0o755))
	must(t, os.WriteFile(e.m.ConsoleLog, []byte("output of an older run\n"), 0o644))
	_, err := (&Driver{}).Start(context.Background(), e.m)
	if err == nil {
		t.Fatal("Start succeeded with a firecracker that died")
	}
	for _, want := range []string{"exited before creating its API socket", "exit status 3",
		"fake firecracker: starting up", "Error creating the VMM: Kvm(Error(19))"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "older run") {
		t.Errorf("error %q quotes an older run's output", err)
	}
}

func TestStartCancelledWhileWaitingForSocket(t *testing.T) {
	e := newTestEnv(t, fakeConfig{SocketDelay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the fake runs (it records itself first thing; on a
	// loaded host that can take longer than any fixed delay).
	cancelled := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if data, _ := os.ReadFile(e.cfg.Record); len(data) > 0 {
				break
			}
		}
		cancelled <- time.Now()
		cancel()
	}()
	_, err := (&Driver{}).Start(ctx, e.m)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start error = %v, want context.Canceled", err)
	}
	// Far below the fake's minute of delay, which is what Start would
	// wait out had it missed the cancellation.
	if el := time.Since(<-cancelled); el > 10*time.Second {
		t.Errorf("Start took %v to notice the cancellation", el)
	}
	pids := e.pids(t)
	if len(pids) == 0 {
		t.Fatal("the fake firecracker never ran")
	}
	waitGone(t, pids[0])
}

func TestStartSocketTimeout(t *testing.T) {
	e := newTestEnv(t, fakeConfig{SocketDelay: time.Minute})
	// Long enough for the fake (this test binary, under -race) to start
	// and record its pid on a loaded host (at 200 ms it sometimes had not;
	// 3s left little room), far below its delay.
	_, err := (&Driver{SocketTimeout: 10 * time.Second}).Start(context.Background(), e.m)
	if err == nil || !strings.Contains(err.Error(), "no API socket") {
		t.Fatalf("Start error = %v, want a socket timeout", err)
	}
	pids := e.pids(t)
	if len(pids) == 0 {
		t.Fatal("the fake firecracker never ran")
	}
	waitGone(t, pids[0])
}

func TestStartRefusesRunningVM(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	d := &Driver{}
	if _, err := d.Start(context.Background(), e.m); err != nil {
		t.Fatal(err)
	}
	_, err := d.Start(context.Background(), e.m)
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Start error = %v, want already running", err)
	}
	if n := len(e.pids(t)); n != 1 {
		t.Errorf("%d firecrackers spawned, want 1", n)
	}
}

// attachConsole connects to p's console socket and checks the guest
// answers there: the real console relay holds Firecracker's terminal.
func attachConsole(t *testing.T, m vmm.Machine, p vmm.Process) net.Conn {
	t.Helper()
	if want := filepath.Join(m.Dir, ConsoleSocketName); p.ConsoleSocket != want {
		t.Fatalf("ConsoleSocket = %q, want %s", p.ConsoleSocket, want)
	}
	c, err := net.Dial("unix", p.ConsoleSocket)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	want := `fake guest: you typed "uname -a"`
	var got strings.Builder
	buf := make([]byte, 1024)
	// Up to 30s: the relay is this test binary too, and on a loaded host
	// it can take seconds to start serving.
	for attempt := 0; attempt < 120 && !strings.Contains(got.String(), want); attempt++ {
		// The relay may not have taken the connection yet: type again.
		_, err := c.Write([]byte("uname -a\r"))
		must(t, err)
		_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		for !strings.Contains(got.String(), want) {
			n, err := c.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
	}
	if !strings.Contains(got.String(), want) {
		t.Fatalf("console socket: typed a line, the guest's answer %q did not come back; got %q", want, got.String())
	}
	return c
}

// TestConsoleRelay: with ConsoleRelay set, Firecracker's stdin and stdout
// are a terminal held by the relay, whose socket is the VM's console; it
// logs the output and goes away with Firecracker.
func TestConsoleRelay(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	m := e.m
	d := &Driver{ConsoleRelay: e.relay}
	p, err := d.Start(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	c := attachConsole(t, m, p)
	must(t, d.Shutdown(context.Background(), m, p))
	waitGone(t, p.PID)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("console connection after Firecracker exited: %v, want the relay to hang up", err)
	}
	if _, err := net.Dial("unix", p.ConsoleSocket); err == nil {
		t.Error("the console socket still answers after Firecracker exited: the relay outlived it")
	}
	log, _ := os.ReadFile(m.ConsoleLog)
	for _, want := range []string{"fake firecracker: guest booted", "fake guest: console on a terminal: true", `you typed "uname -a"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("console log lacks %q:\n%s", want, log)
		}
	}

	// A second boot of the same VM replaces the stale socket.
	p, err = d.Start(context.Background(), m)
	if err != nil {
		t.Fatalf("restart with the relay: %v", err)
	}
	attachConsole(t, m, p)
}

// TestConsoleRelayQuotesFailure: when Firecracker dies at once, its last
// words pass through the relay into the log before the error quotes them.
func TestConsoleRelayQuotesFailure(t *testing.T) {
	e := newTestEnv(t, fakeConfig{Die: true})
	_, err := (&Driver{ConsoleRelay: e.relay}).Start(context.Background(), e.m)
	if err == nil {
		t.Fatal("Start succeeded with a firecracker that died")
	}
	for _, want := range []string{"exit status 3", "fake firecracker: starting up", "Kvm(Error(19))"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(e.m.Dir, ConsoleSocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the console socket is left after the failed start (stat: %v)", err)
	}
}

// An extra drive (a copy-in) is configured read-only after the root
// drive, and the fake checks its body against the API schema; a shared
// folder is refused before anything runs.
func TestStartExtraDrive(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	m := e.m
	m.Drives = []vmm.Drive{{ID: "copyin0", Path: m.Rootfs, ReadOnly: true}}
	if _, err := (&Driver{}).Start(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, e, []call{
		{"GET", "/", ""},
		{"PUT", "/logger", js(map[string]any{"log_path": filepath.Join(m.Dir, "firecracker.log"), "level": "Info", "show_level": true, "show_log_origin": false})},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256}`},
		{"PUT", "/boot-source", js(map[string]any{"kernel_image_path": m.Kernel, "boot_args": wantArgs})},
		{"PUT", "/drives/rootfs", js(map[string]any{"drive_id": "rootfs", "path_on_host": m.Rootfs, "is_root_device": true, "is_read_only": false})},
		{"PUT", "/drives/copyin0", js(map[string]any{"drive_id": "copyin0", "path_on_host": m.Rootfs, "is_root_device": false, "is_read_only": true})},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
	})
	m.Name = "shares"
	m.Shares = []vmm.Share{{Tag: "banger0", HostDir: t.TempDir()}}
	if _, err := (&Driver{}).Start(context.Background(), m); !errors.Is(err, ErrNoSharedFolders) {
		t.Fatalf("Start with a shared folder: %v, want ErrNoSharedFolders", err)
	}
}
