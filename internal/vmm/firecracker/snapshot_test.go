package firecracker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/thaloco/banger/internal/vmm"
)

// restoredConfig is the part of GET /vm/config the tests look at.
type restoredConfig struct {
	Machine struct {
		VCPUs  int `json:"vcpu_count"`
		MemMiB int `json:"mem_size_mib"`
	} `json:"machine-config"`
	Boot   map[string]any `json:"boot-source"`
	Drives []struct {
		ID   string `json:"drive_id"`
		Path string `json:"path_on_host"`
	} `json:"drives"`
	Nets []struct {
		ID      string `json:"iface_id"`
		HostDev string `json:"host_dev_name"`
		MAC     string `json:"guest_mac"`
	} `json:"network-interfaces"`
	Vsock struct {
		UDSPath string `json:"uds_path"`
	} `json:"vsock"`
}

// clone is a new VM in e made from m: its own name, directory, disk and tap.
func (e *testEnv) clone(t *testing.T, m vmm.Machine, name, tap string) vmm.Machine {
	m.Name = name
	m.Dir = filepath.Join(e.dir, name)
	m.ConsoleLog = filepath.Join(m.Dir, "console.log")
	m.Rootfs = e.file(t, name+".ext4", 0o644)
	m.Net.Tap = tap
	return m
}

// saveSnapshot pauses p, saves it into a new directory and resumes it.
func saveSnapshot(t *testing.T, d *Driver, m vmm.Machine, p vmm.Process) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	must(t, d.Pause(ctx, m, p))
	files, err := d.SaveState(ctx, m, p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(files, []string{"vmstate", "memory", "drives.json"}) {
		t.Errorf("SaveState wrote %q, want [vmstate memory drives.json]", files)
	}
	for _, name := range files {
		st, err := os.Stat(filepath.Join(dir, name))
		must(t, err)
		if st.Mode() != 0o600 || st.Size() == 0 {
			t.Errorf("%s: mode %v, %d bytes; want 0600 and not empty", name, st.Mode(), st.Size())
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "memory")); st.Size() != int64(m.MemoryMiB)<<20 {
		t.Errorf("memory file has %d bytes, want the guest's %d MiB", st.Size(), m.MemoryMiB)
	}
	// A guest left paused (a snapshot killed half-way) is resumed by
	// Unpause, once.
	for i, want := range []bool{true, false} {
		got, err := d.Unpause(ctx, m, p)
		if err != nil || got != want {
			t.Errorf("Unpause #%d = %v, %v; want %v", i+1, got, err, want)
		}
	}
	return dir
}

// TestRestoreSourceGone: Firecracker reopens the snapshotted VM's disk
// path while loading (the fake checks, as Firecracker does); with that VM
// and its directory gone, as a warm image's throwaway VM always is, the
// clone's disk stands in there for the load, and nothing is left there
// afterwards.
func TestRestoreSourceGone(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	ctx := context.Background()
	d := &Driver{VsockCID: 3, ConsoleRelay: e.relay}
	m := e.m
	srcDir := filepath.Join(t.TempDir(), "gone", "vm1")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	m.Rootfs = filepath.Join(srcDir, "disk.ext4")
	if err := os.WriteFile(m.Rootfs, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Net = vmmTap("tap-vm1", "02:fc:00:00:00:01")
	p, err := d.Start(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	dir := saveSnapshot(t, d, m, p)
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	if err := os.RemoveAll(filepath.Dir(srcDir)); err != nil {
		t.Fatal(err)
	}
	c := e.clone(t, m, "vm2", "tap-vm2")
	if _, err := d.Restore(ctx, c, dir); err != nil {
		t.Fatalf("restore with the source's disk gone: %v", err)
	}
	if _, err := os.Lstat(filepath.Dir(srcDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stand-in for the source's disk was left behind: %v", err)
	}
}

// TestSnapshotRestore: a booted VM is paused, saved and resumed; a clone
// restored from the snapshot has the snapshot's machine, its own disk, tap
// and vsock socket, and its console works through the relay.
func TestSnapshotRestore(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	ctx := context.Background()
	d := &Driver{VsockCID: 3, ConsoleRelay: e.relay}
	m := e.m
	m.Net = vmmTap("tap-vm1", "02:fc:00:00:00:01")
	p, err := d.Start(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	dir := saveSnapshot(t, d, m, p)

	c := e.clone(t, m, "vm2", "tap-vm2")
	p2, err := d.Restore(ctx, c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if p2.PID == p.PID || p2.APISocket != filepath.Join(c.Dir, SocketName) {
		t.Errorf("Restore returned %+v; the original is %+v", p2, p)
	}
	var cfg restoredConfig
	must(t, (&Client{Socket: p2.APISocket}).Get(ctx, "/vm/config", &cfg))
	if cfg.Machine.VCPUs != 2 || cfg.Machine.MemMiB != 256 {
		t.Errorf("restored machine %+v, want the snapshot's 2 vCPUs and 256 MiB", cfg.Machine)
	}
	if len(cfg.Drives) != 1 || cfg.Drives[0].Path != c.Rootfs {
		t.Errorf("restored drives %+v, want the clone's disk %s", cfg.Drives, c.Rootfs)
	}
	if len(cfg.Nets) != 1 || cfg.Nets[0].HostDev != "tap-vm2" || cfg.Nets[0].MAC != "02:fc:00:00:00:01" {
		t.Errorf("restored network %+v, want the snapshot's interface on tap-vm2", cfg.Nets)
	}
	if want := filepath.Join(c.Dir, VsockName); cfg.Vsock.UDSPath != want {
		t.Errorf("restored vsock socket %s, want %s", cfg.Vsock.UDSPath, want)
	}
	if cfg.Boot != nil {
		t.Errorf("restored VM shows a boot source %v", cfg.Boot)
	}
	attachConsole(t, c, p2)

	in := func(name string) string { return filepath.Join(dir, name) }
	logger := func(m vmm.Machine) string {
		return js(map[string]any{"log_path": filepath.Join(m.Dir, "firecracker.log"), "level": "Info", "show_level": true, "show_log_origin": false})
	}
	checkCalls(t, e, []call{
		{"GET", "/", ""},
		{"PUT", "/logger", logger(m)},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256}`},
		{"PUT", "/boot-source", js(map[string]any{"kernel_image_path": m.Kernel, "boot_args": wantArgs})},
		{"PUT", "/drives/rootfs", js(map[string]any{"drive_id": "rootfs", "path_on_host": m.Rootfs, "is_root_device": true, "is_read_only": false})},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap-vm1","guest_mac":"02:fc:00:00:00:01"}`},
		{"PUT", "/vsock", js(map[string]any{"guest_cid": 3, "uds_path": filepath.Join(m.Dir, "vsock.sock")})},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
		{"PATCH", "/vm", `{"state":"Paused"}`},
		{"PUT", "/snapshot/create", js(map[string]any{"snapshot_type": "Full", "snapshot_path": in("vmstate"), "mem_file_path": in("memory")})},
		{"GET", "/", ""}, // Unpause: Paused
		{"PATCH", "/vm", `{"state":"Resumed"}`},
		{"GET", "/", ""}, // Unpause: Running
		// the clone
		{"GET", "/", ""},
		{"PUT", "/logger", logger(c)},
		{"PUT", "/snapshot/load", js(map[string]any{
			"snapshot_path":     in("vmstate"),
			"mem_backend":       map[string]any{"backend_type": "File", "backend_path": in("memory")},
			"network_overrides": []any{map[string]any{"iface_id": "eth0", "host_dev_name": "tap-vm2"}},
			"vsock_override":    map[string]any{"uds_path": filepath.Join(c.Dir, VsockName)},
			"resume_vm":         false,
			"clock_realtime":    true,
		})},
		{"PATCH", "/drives/rootfs", js(map[string]any{"drive_id": "rootfs", "path_on_host": c.Rootfs})},
		{"PATCH", "/vm", `{"state":"Resumed"}`},
		{"GET", "/vm/config", ""},
	})

	// Both guests run on and shut down on their own.
	for _, vm := range []struct {
		m vmm.Machine
		p vmm.Process
	}{{m, p}, {c, p2}} {
		must(t, d.Shutdown(ctx, vm.m, vm.p))
		waitGone(t, vm.p.PID)
	}
}

// SaveState of a running guest fails with Firecracker's own reason.
func TestSaveStateNotPaused(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	d := &Driver{}
	p, err := d.Start(context.Background(), e.m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.SaveState(context.Background(), e.m, p, t.TempDir())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Path != "/snapshot/create" || !strings.Contains(err.Error(), "the microVM is not paused") {
		t.Fatalf("SaveState of a running VM: %v, want Firecracker's fault quoted", err)
	}
	if !strings.Contains(err.Error(), `VM "vm1"`) {
		t.Errorf("error %q does not name the VM", err)
	}
}

// A snapshot directory without its memory file is refused before
// anything is spawned, naming the file.
func TestRestoreMissingFile(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "vmstate"), []byte("{}"), 0o600))
	c := e.clone(t, e.m, "vm2", "")
	_, err := (&Driver{}).Restore(context.Background(), c, dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "memory")) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Restore without a memory file: %v, want an error naming %s", err, filepath.Join(dir, "memory"))
	}
	if pids := e.pids(t); len(pids) != 0 {
		t.Errorf("firecracker spawned (pids %v) for a snapshot it could not load", pids)
	}
}

// A snapshot Firecracker refuses to load leaves no process behind, and
// the error quotes Firecracker's reason: whether Firecracker ends itself
// (as it does after a failed load) or the driver must kill it.
func TestRestoreLoadFails(t *testing.T) {
	const fault = "Load snapshot error: Cannot deserialize the microVM state"
	for _, tc := range []struct {
		name   string
		faults map[string]string
		spoil  func(dir string) error
		want   string
	}{
		{"memory file of the wrong size", nil,
			func(dir string) error { return os.Truncate(filepath.Join(dir, "memory"), 1<<20) },
			"the snapshot's guest has 268435456"},
		{"fault answered, process left alive", map[string]string{"/snapshot/load": fault},
			func(string) error { return nil }, fault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, fakeConfig{Faults: tc.faults})
			d := &Driver{ConsoleRelay: e.relay}
			p, err := d.Start(context.Background(), e.m)
			if err != nil {
				t.Fatal(err)
			}
			dir := saveSnapshot(t, d, e.m, p)
			must(t, tc.spoil(dir))
			c := e.clone(t, e.m, "vm2", "")
			_, err = d.Restore(context.Background(), c, dir)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Path != "/snapshot/load" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore: %v, want the load's fault %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), `restoring firecracker for VM "vm2"`) {
				t.Errorf("error %q does not say what failed", err)
			}
			pids := e.pids(t)
			waitGone(t, pids[len(pids)-1])
			if _, err := os.Stat(filepath.Join(c.Dir, ConsoleSocketName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the clone's console socket is left after the failed restore (stat: %v)", err)
			}
		})
	}
}

func TestSnapshotJailed(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	d := &Driver{Jailer: &Jailer{UID: 123, GID: 123, ChrootBaseDir: filepath.Join(e.dir, "jails")}}
	const want = "snapshots of jailed Firecracker VMs are not supported yet"
	if _, err := d.SaveState(context.Background(), e.m, vmm.Process{APISocket: "/nonexistent"}, t.TempDir()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("jailed SaveState: %v", err)
	}
	if _, err := d.Restore(context.Background(), e.m, t.TempDir()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("jailed Restore: %v", err)
	}
	if pids := e.pids(t); len(pids) != 0 {
		t.Errorf("jailed Restore spawned %v", pids)
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct{ fake, want string }{
		{"", "Firecracker v1.17.0-dev"}, // the spec's
		{"1.16.1", "Firecracker v1.16.1"},
	} {
		newTestEnv(t, fakeConfig{Version: tc.fake})
		got, err := (&Driver{}).Version(context.Background())
		if err != nil || got != tc.want {
			t.Errorf("fake %q: Version = %q, %v; want %q", tc.fake, got, err, tc.want)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := (&Driver{}).Version(context.Background()); err == nil || !strings.Contains(err.Error(), "not found on PATH") {
		t.Errorf("Version without firecracker: %v", err)
	}
}

// clock_realtime goes only to Firecrackers that know it; others reject
// unknown fields.
func TestLoadBodyClock(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{{"1.17.0-dev", true}, {"1.16.1", true}, {"v2.0.0", true}, {"1.15.2", false}, {"1.9.0", false}, {"0.25.0", false}, {"", false}, {"x.y", false}} {
		if got := loadBody(vmm.Machine{Net: vmm.Network{Mode: "none"}}, layout{}, 0, "/s", tc.version).ClockRealtime; got != tc.want {
			t.Errorf("version %q: clock_realtime %v, want %v", tc.version, got, tc.want)
		}
	}
}
