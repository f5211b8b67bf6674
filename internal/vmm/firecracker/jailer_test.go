package firecracker

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/thaloco/banger/internal/vmm"
)

// jailIDs are the uid/gid the jailed Firecracker runs as: a foreign pair
// as root (as in CI), else our own (chown to another user needs root).
func jailIDs() (int, int) {
	if os.Getuid() == 0 {
		return 1234, 1235
	}
	return os.Getuid(), os.Getgid()
}

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	st, err := os.Stat(p)
	must(t, err)
	s := st.Sys().(*syscall.Stat_t)
	return int(s.Uid), int(s.Gid)
}

// The jailer is the fake too (see fake_test.go): it records its argv,
// checks it like the jailer, and serves the API on the socket inside the
// jail, opening every file Firecracker is told about inside the jail.
func TestJailer(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	uid, gid := jailIDs()
	base := filepath.Join(e.dir, "jail")
	m := e.m
	m.Initrd = e.file(t, "initrd.img", 0o600) // unreadable to the jailed user: copied
	d := &Driver{VsockCID: 3, Jailer: &Jailer{UID: uid, GID: gid, ChrootBaseDir: base, ExtraArgs: []string{"--cgroup-version", "2"}},
		ConsoleRelay: e.relay}
	jailDir := filepath.Join(base, "firecracker", "vm1")
	root := filepath.Join(jailDir, "root")
	must(t, os.MkdirAll(root, 0o755))
	must(t, os.WriteFile(filepath.Join(root, "stale"), nil, 0o644)) // a previous run's jail

	p, err := d.Start(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	attachConsole(t, m, p) // the relay and its socket stay outside the jail
	if got := d.JailDir(m); got != jailDir {
		t.Errorf("JailDir = %s, want %s", got, jailDir)
	}
	if p.APISocket != filepath.Join(root, "fc.sock") || d.VsockPath(m) != filepath.Join(root, "vsock.sock") {
		t.Errorf("APISocket %s, VsockPath %s: not in the jail %s", p.APISocket, d.VsockPath(m), root)
	}
	wantArgv := []string{"--id", "vm1", "--exec-file", filepath.Join(e.dir, "bin", "firecracker"),
		"--uid", strconv.Itoa(uid), "--gid", strconv.Itoa(gid), "--chroot-base-dir", base,
		"--cgroup-version", "2", "--", "--api-sock", "/fc.sock"}
	var argv []string
	for _, r := range e.records(t) {
		if r.Argv != nil {
			argv = r.Argv
		}
	}
	if !reflect.DeepEqual(argv, wantArgv) {
		t.Errorf("jailer argv:\n got %q\nwant %q", argv, wantArgv)
	}

	if _, err := os.Stat(filepath.Join(root, "stale")); !os.IsNotExist(err) {
		t.Errorf("the old jail was not replaced: %v", err)
	}
	same := func(a, b string) bool {
		sa, err1 := os.Stat(a)
		sb, err2 := os.Stat(b)
		must(t, err1)
		must(t, err2)
		return os.SameFile(sa, sb)
	}
	if !same(m.Rootfs, filepath.Join(root, "rootfs.ext4")) {
		t.Error("rootfs is not hard-linked into the jail: guest writes would be lost")
	}
	// A 0644 kernel and a private initrd are copied (TestJailerReadOnlyFiles
	// has the rest of the rules).
	for src, name := range map[string]string{m.Kernel: "vmlinux", m.Initrd: "initrd"} {
		if same(src, filepath.Join(root, name)) {
			t.Errorf("%s was linked into the jail, not copied", src)
		} else if b, _ := os.ReadFile(filepath.Join(root, name)); string(b) != "not really "+filepath.Base(src) {
			t.Errorf("jail/%s copy holds %q", name, b)
		}
	}
	for _, f := range []string{"", "rootfs.ext4", "firecracker.log"} {
		if u, g := owner(t, filepath.Join(root, f)); u != uid || g != gid {
			t.Errorf("jail/%s owned by %d:%d, want %d:%d", f, u, g, uid, gid)
		}
	}

	checkCalls(t, e, []call{
		{"GET", "/", ""},
		{"PUT", "/logger", `{"log_path":"/firecracker.log","level":"Info","show_level":true,"show_log_origin":false}`},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256}`},
		{"PUT", "/boot-source", js(map[string]any{"kernel_image_path": "/vmlinux", "boot_args": wantArgs, "initrd_path": "/initrd"})},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/rootfs.ext4","is_root_device":true,"is_read_only":false}`},
		{"PUT", "/vsock", `{"guest_cid":3,"uds_path":"/vsock.sock"}`},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
	})
	must(t, d.Shutdown(context.Background(), m, p))
	waitGone(t, p.PID)
}

func TestJailerRejectsBadID(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	m := e.m
	m.Name = "vm_1"
	_, err := (&Driver{Jailer: &Jailer{ChrootBaseDir: filepath.Join(e.dir, "jail")}}).Start(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), `VM name "vm_1" cannot be a jailer id`) {
		t.Fatalf("Start error %v, want a bad jailer id", err)
	}
}

// A disk on another filesystem than the jail cannot be hard-linked, and a
// copy would lose the guest's writes: Start refuses with a hint.
func TestJailerDiskOnOtherFilesystem(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	base, err := os.MkdirTemp("/dev/shm", "banger-jail-")
	if err != nil {
		t.Skipf("no /dev/shm to put a jail on another filesystem: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	var a, b syscall.Stat_t
	must(t, syscall.Stat(base, &a))
	must(t, syscall.Stat(e.dir, &b))
	if a.Dev == b.Dev {
		t.Skipf("/dev/shm and %s are on the same filesystem here", e.dir)
	}
	uid, gid := jailIDs()
	_, err = (&Driver{Jailer: &Jailer{UID: uid, GID: gid, ChrootBaseDir: base}}).Start(context.Background(), e.m)
	if err == nil || !strings.Contains(err.Error(), "putting the rootfs in the jail") || !strings.Contains(err.Error(), "same filesystem") {
		t.Fatalf("Start error %v, want a cross-filesystem rootfs error with a hint", err)
	}
}

// Sockets lists what Start creates: the API and vsock sockets inside the
// jail, the console relay's in the VM's directory. Start refuses a jailed
// VM whose vsock socket is too long though its API socket fits.
func TestSocketsInJail(t *testing.T) {
	e := newTestEnv(t, fakeConfig{})
	base := filepath.Join(e.dir, "jail")
	d := &Driver{Jailer: &Jailer{ChrootBaseDir: base}, ConsoleRelay: e.relay, VsockCID: 3}
	root := filepath.Join(base, "firecracker", e.m.Name, "root")
	want := []vmm.Socket{
		{What: "firecracker API socket", Path: filepath.Join(root, SocketName)},
		{What: "console socket", Path: filepath.Join(e.m.Dir, ConsoleSocketName)},
		{What: "vsock socket", Path: filepath.Join(root, VsockName)},
	}
	if got := d.Sockets(e.m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Sockets = %+v\nwant %+v", got, want)
	}

	// A base directory that leaves the API socket exactly 107 bytes long.
	pad := vmm.MaxSocketPath - len(filepath.Join(base, "firecracker", e.m.Name, "root", SocketName)) - 1
	if pad < 1 {
		t.Fatalf("test directory %s is too long", e.dir)
	}
	d.Jailer.ChrootBaseDir = filepath.Join(base, strings.Repeat("p", pad))
	socks := d.Sockets(e.m)
	if len(socks[0].Path) != vmm.MaxSocketPath {
		t.Fatalf("bad test setup: %s", socks[0].Path)
	}
	_, err := d.Start(context.Background(), e.m)
	if err == nil || !strings.Contains(err.Error(), `VM "vm1": vsock socket path `+socks[2].Path) {
		t.Fatalf("Start with a %d-byte vsock socket path: %v", len(socks[2].Path), err)
	}
	if pids := e.pids(t); len(pids) != 0 {
		t.Errorf("Start spawned %v before refusing", pids)
	}
}

// TestJailerReadOnlyFiles: the kernel and initrd in a jail are never
// writable by the jailed user, and never a hard link to a file that user
// could change. Only a root-owned 0444 file is linked; anything else is
// copied to a root-owned file the jail's group may only read.
func TestJailerReadOnlyFiles(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("making root-owned and foreign-owned files needs root")
	}
	uid, gid := jailIDs()
	for _, tc := range []struct {
		name     string
		uid, gid int
		mode     os.FileMode
		link     bool
	}{
		{"root0444", 0, 0, 0o444, true},
		{"root0644", 0, 0, 0o644, false},
		{"root0400", 0, 0, 0o400, false},
		{"group0444", 0, gid, 0o444, true},
		{"group0464", 0, gid, 0o464, false},
		{"jailuser0444", uid, gid, 0o444, false},
		{"setuid0444", 0, 0, 0o444 | os.ModeSetuid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, fakeConfig{})
			m := e.m
			m.Kernel, m.Initrd = e.file(t, "vmlinux", 0o600), e.file(t, "initrd.img", 0o600)
			for _, p := range []string{m.Kernel, m.Initrd} {
				must(t, os.Chown(p, tc.uid, tc.gid))
				must(t, os.Chmod(p, tc.mode))
			}
			d := &Driver{Jailer: &Jailer{UID: uid, GID: gid, ChrootBaseDir: filepath.Join(e.dir, "jail")}}
			p, err := d.Start(context.Background(), m)
			if err != nil {
				t.Fatal(err) // the fake also refuses files the jailed user cannot read
			}
			root := filepath.Join(d.JailDir(m), "root")
			for src, name := range map[string]string{m.Kernel: "vmlinux", m.Initrd: "initrd"} {
				dst := filepath.Join(root, name)
				sst, err1 := os.Stat(src)
				dst0, err2 := os.Stat(dst)
				must(t, err1)
				must(t, err2)
				if linked := os.SameFile(sst, dst0); linked != tc.link {
					t.Errorf("jail/%s: linked %v, want %v", name, linked, tc.link)
				}
				if b, _ := os.ReadFile(dst); string(b) != "not really "+filepath.Base(src) {
					t.Errorf("jail/%s holds %q", name, b)
				}
				u, g := owner(t, dst)
				perm := dst0.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid)
				if u == uid || perm&0o222 != 0 || perm&(os.ModeSetuid|os.ModeSetgid) != 0 {
					t.Errorf("jail/%s is %d:%d %v: want no write bits and an owner other than the jailed user %d", name, u, g, perm, uid)
				}
				if !tc.link && (u != 0 || g != gid || perm != 0o440) {
					t.Errorf("jail/%s copy is %d:%d %v, want 0:%d -r--r-----", name, u, g, perm, gid)
				}
			}
			must(t, d.Shutdown(context.Background(), m, p))
			waitGone(t, p.PID)
		})
	}
}

// TestJailerRefusesRoot: the jailed Firecracker never runs as root, nor
// with an id chown(2) would take for "no change".
func TestJailerRefusesRoot(t *testing.T) {
	for _, tc := range []struct {
		uid, gid int
		want     string
	}{
		{0, 1235, "refusing to run the jailed Firecracker as uid 0 (root)"},
		{1234, 0, "refusing to run the jailed Firecracker as gid 0 (root)"},
		{-1, 1235, "jailer uid -1 is out of range"},
		{1234, 1<<32 - 1, "jailer gid 4294967295 is out of range"},
	} {
		e := newTestEnv(t, fakeConfig{})
		d := &Driver{Jailer: &Jailer{UID: tc.uid, GID: tc.gid, ChrootBaseDir: filepath.Join(e.dir, "jail")}}
		_, err := d.Start(context.Background(), e.m)
		if err == nil || !strings.Contains(err.Error(), `VM "vm1": `+tc.want) {
			t.Errorf("Start as %d:%d: %v, want %q", tc.uid, tc.gid, err, tc.want)
		}
		if pids := e.pids(t); len(pids) != 0 {
			t.Errorf("Start as %d:%d spawned %v", tc.uid, tc.gid, pids)
		}
	}
}
