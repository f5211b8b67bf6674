package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/netnstest"
	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/vmm"
	"github.com/thaloco/banger/internal/vmm/qemu"
)

// tickInit prints a counter on the console every 200ms, so a restored
// guest shows where it continues from.
const tickInit = `(i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.2; done) &`

var tickRE = regexp.MustCompile(`tick (\d+)`)

// ticks returns the counter values in a console log, in order.
func ticks(log string) []int {
	var out []int
	for _, m := range tickRE.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// guestRun runs command in VM name over SSH and returns its output.
func guestRun(t *testing.T, s *Store, name, command string) string {
	t.Helper()
	target, err := s.SSH(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := target.Connect(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out strings.Builder
	code, err := guest.Run(ctx, c, command, nil, &out, io.Discard)
	if err != nil || code != 0 {
		t.Fatalf("VM %s: %q: code %d, err %v, output %q", name, command, code, err, out.String())
	}
	return out.String()
}

// TestSnapshotClones snapshots a running busybox guest (real QEMU), then
// restores two clones at once: each continues from the snapshot point
// (its counter goes on, no kernel boot) as its own machine: its own
// hostname and MAC, different /dev/urandom bytes, the host's clock.
func TestSnapshotClones(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	setup(t)
	kp := readFile(t, filepath.Join(s.Layout.SSHDir(), "id_ed25519.pub"))
	rootfs := filepath.Join(t.TempDir(), "tick.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: kp, Init: tickInit})
	if _, err := s.Create(ctx, CreateOptions{Name: "src", Kernel: "test", Rootfs: rootfs, MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}
	src := startRetry(t, s, "src")
	if src.Config.Ready != ReadySSH {
		t.Fatalf("source VM readiness %q, want ssh", src.Config.Ready)
	}
	guestRun(t, s, "src", "true") // pins the host key, as a user's first ssh does
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ts := ticks(readFile(t, src.ConsoleLog())); len(ts) > 0 && ts[len(ts)-1] >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the source guest's counter did not reach 5")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Bad input before the real snapshot.
	if _, err := s.Snapshot(ctx, "nope", "x", SnapshotOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("snapshot of a missing VM: %v", err)
	}

	man, err := s.Snapshot(ctx, "src", "snap1", SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	atSnap := ticks(readFile(t, src.ConsoleLog()))
	t.Logf("snapshot: paused %v, state files %+v, disk %d bytes", man.SaveTime, man.StateFiles, man.DiskSize)
	if st := status(t, s, "src"); st.State.Status != StatusRunning {
		t.Fatalf("source after snapshot: %+v", st.State)
	}
	if out := guestRun(t, s, "src", "echo alive"); out != "alive\n" {
		t.Fatalf("source after snapshot answered %q", out)
	}
	// Private files: the snapshot holds the guest's memory.
	if st, err := os.Stat(man.Dir()); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("snapshot dir mode: %v %v", st.Mode(), err)
	}
	ents, _ := os.ReadDir(man.Dir())
	for _, e := range ents {
		if info, _ := e.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode())
		}
	}
	// The guest's RAM was copied out of its memfd into a sparse memory
	// file (zero pages as holes), the rest streamed into vmstate.
	var memFile snapshot.File
	for _, f := range man.StateFiles {
		if f.Name == qemu.MemoryFileName {
			memFile = f
		}
	}
	if memFile.Size != 256<<20 || memFile.DiskUsage <= 0 || memFile.DiskUsage >= memFile.Size {
		t.Errorf("memory file %+v: want 256 MiB, sparse", memFile)
	}
	memPath := filepath.Join(man.Dir(), qemu.MemoryFileName)
	memSum := sha256File(t, memPath)
	if _, err := s.Snapshot(ctx, "src", "snap1", SnapshotOptions{}); !errors.Is(err, snapshot.ErrExists) {
		t.Errorf("duplicate snapshot name: %v", err)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "bad", Snapshot: "snap1", CPUs: 2}); err == nil || !strings.Contains(err.Error(), "cpus 2 conflicts") {
		t.Errorf("conflicting --cpus: %v", err)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "bad", Snapshot: "nosuch"}); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("unknown snapshot: %v", err)
	}
	// Host access: the source's (the default, none) is recorded; a clone
	// gets it, and asking for another is refused.
	if man.HostAccess != HostAccessNone {
		t.Errorf("snapshot records host access %q, want %q", man.HostAccess, HostAccessNone)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "bad", Snapshot: "snap1", HostAccess: HostAccessLoopback}); err == nil ||
		!strings.Contains(err.Error(), `host-access loopback conflicts with snapshot "snap1", which has none`) {
		t.Errorf("conflicting --host-access: %v", err)
	}

	// A snapshot from another QEMU version or of another kernel build is
	// refused with the reason (the manifest is edited as if it were).
	manPath := filepath.Join(man.Dir(), snapshot.ManifestFile)
	orig := readFile(t, manPath)
	for _, tc := range []struct{ from, to, want string }{
		{man.VMMVersion, "QEMU emulator version 6.2.0", `taken by qemu "QEMU emulator version 6.2.0"`},
		{man.KernelSHA256, strings.Repeat("0", 64), `kernel "test" changed since`},
	} {
		if err := os.WriteFile(manPath, []byte(strings.Replace(orig, tc.from, tc.to, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.Create(ctx, CreateOptions{Name: "stale", Snapshot: "snap1"})
		var se *StaleError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hint:") {
			t.Errorf("stale snapshot (%s): %v", tc.want, err)
		}
	}
	// A snapshot taken before host access existed had full access, and
	// so does a clone of it.
	if !strings.Contains(orig, `"host_access": "none",`) {
		t.Fatalf("manifest lacks host_access:\n%s", orig)
	}
	if err := os.WriteFile(manPath, []byte(strings.Replace(orig, `"host_access": "none",`, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Create(ctx, CreateOptions{Name: "old-clone", Snapshot: "snap1"}); err != nil || v.Config.HostAccess != HostAccessLoopback {
		t.Errorf("clone of a snapshot without host_access: %+v, %v; want host access loopback", v, err)
	} else if err := s.Remove(ctx, "old-clone", false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manPath, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}

	names := []string{"clone-a", "clone-b"}
	for _, n := range names {
		if _, err := s.Create(ctx, CreateOptions{Name: n, Snapshot: "snap1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := snapshot.New(s.Layout).Remove(ctx, "snap1", false, s.SnapshotUsers); err == nil || !strings.Contains(err.Error(), "clone-a") {
		t.Errorf("removing a snapshot clones still need: %v", err)
	}
	startAll(t, s, names)
	random := map[string]string{}
	for _, n := range names {
		v := status(t, s, n)
		t.Logf("%s: restored, VMM up %v, ready %v; identity %s", n, v.State.Boot.VMM, v.State.Boot.Ready, v.State.Identity)
		if v.Config.HostAccess != HostAccessNone || !strings.Contains(strings.Join(v.State.Argv, " "), "restrict=on") {
			t.Errorf("%s: host access %q, VMM argv %q; want none, restrict=on", n, v.Config.HostAccess, v.State.Argv)
		}
		if v.State.Status != StatusRunning || v.State.Path != PathRestore || v.State.RestorePending {
			t.Fatalf("%s after restore: %+v", n, v.State)
		}
		if !strings.Contains(v.State.Identity, "reseed=ioctl") {
			t.Errorf("%s: identity step %q did not reseed with the ioctl", n, v.State.Identity)
		}
		before := time.Now()
		out := guestRun(t, s, n, "hostname; cat /sys/class/net/eth0/address; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s")
		after := time.Now()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 {
			t.Fatalf("%s answered %q", n, out)
		}
		if lines[0] != n {
			t.Errorf("%s: hostname %q", n, lines[0])
		}
		if lines[1] != userMAC(n) {
			t.Errorf("%s: MAC %q, want %q", n, lines[1], userMAC(n))
		}
		random[n] = lines[2]
		sec, _ := strconv.ParseInt(lines[3], 10, 64)
		if sec < before.Unix()-1 || sec > after.Unix()+1 {
			t.Errorf("%s: guest clock %d, host %d..%d", n, sec, before.Unix(), after.Unix())
		}
		// It continued from the snapshot point instead of booting.
		log := readFile(t, v.ConsoleLog())
		ts := ticks(log)
		if strings.Contains(log, "Linux version") || len(ts) == 0 || ts[0] < atSnap[0]+5 || ts[0] > atSnap[len(atSnap)-1]+3 {
			t.Errorf("%s: console after restore (source had ticks %v at the snapshot): %q", n, atSnap[len(atSnap)-3:], log)
		}
	}
	if random["clone-a"] == random["clone-b"] || len(random["clone-a"]) != 64 {
		t.Errorf("clones read the same /dev/urandom bytes: %v", random)
	}
	// The clones mapped the memory file private: what they wrote to
	// their RAM never reached it.
	if got := sha256File(t, memPath); got != memSum {
		t.Errorf("the snapshot's memory file changed while clones ran (sha256 %s, was %s)", got, memSum)
	}
	// Neither needs the snapshot any more.
	if u, _ := s.SnapshotUsers("snap1"); len(u) != 0 {
		t.Errorf("snapshot users after the restores: %v", u)
	}

	// A snapshot killed after pausing leaves the VM paused: vm start
	// resumes it. A staging directory it left is cleared by the next
	// snapshot of that name.
	b := status(t, s, "clone-b")
	if err := (&qemu.Driver{}).Pause(ctx, vmm.Machine{Name: "clone-b"}, vmm.Process{APISocket: b.State.APISocket}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, "clone-b", StartOptions{}); err != nil {
		t.Fatalf("start of a paused VM: %v", err)
	}
	if out := guestRun(t, s, "clone-b", "echo resumed"); out != "resumed\n" {
		t.Fatalf("after resume: %q", out)
	}
	left := filepath.Join(s.Layout.SnapshotsDir(), ".tmp-snap3-0123456789ab")
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx, "clone-b", "snap3", SnapshotOptions{Stop: true}); err != nil {
		t.Fatal(err)
	}
	if fileExists(left) {
		t.Errorf("the interrupted snapshot's staging directory %s is still there", left)
	}
	if st := status(t, s, "clone-b"); st.State.Status != StatusStopped {
		t.Errorf("after snapshot --stop: %+v", st.State)
	}
	// A clone's RAM is the mapped file, not a memfd: its snapshot streams
	// the RAM into vmstate, and restores from there.
	snap3, err := snapshot.New(s.Layout).Get("snap3")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap3.StateFiles) != 1 || snap3.StateFiles[0].Name != qemu.StateFileName {
		t.Errorf("snapshot of a clone has state files %+v, want vmstate alone", snap3.StateFiles)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "clone-c", Snapshot: "snap3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, "clone-c", StartOptions{Timeout: bootTimeout}); err != nil {
		t.Fatal(err)
	}
	if out := guestRun(t, s, "clone-c", "hostname"); out != "clone-c\n" {
		t.Errorf("clone of a clone answered %q", out)
	}
	if _, err := s.Stop(ctx, "clone-c", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "clone-c", true); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.New(s.Layout).Remove(ctx, "snap3", false, s.SnapshotUsers); err != nil {
		t.Error(err)
	}

	// A stopped VM cannot be snapshotted.
	if _, err := s.Stop(ctx, "clone-a", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx, "clone-a", "snap2", SnapshotOptions{}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("snapshot of a stopped VM: %v", err)
	}
	// A truncated memory file is refused with the fix, before any VMM runs.
	// (Never while clones run: they map it, as Firecracker's do.)
	if err := os.Truncate(memPath, memFile.Size/2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "late", Snapshot: "snap1"}); err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "banger snapshot rm snap1") {
		t.Errorf("truncated state file: %v", err)
	}
	if err := snapshot.New(s.Layout).Remove(ctx, "snap1", false, s.SnapshotUsers); err != nil {
		t.Errorf("removing the snapshot: %v", err)
	}
	if ls, _ := snapshot.New(s.Layout).List(); len(ls) != 0 {
		t.Errorf("snapshots left: %+v", ls)
	}
}

// TestSnapshotTapClones snapshots a guest on --net tap (real QEMU, in a
// network namespace of the test's own) and restores two clones at once
// while the source keeps running at its address: each clone comes back
// with the source's address, is reached there in isolation, and ends up
// at its own address with its own MAC, reachable over SSH, the source's
// address gone from its eth0.
func TestSnapshotTapClones(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	s := newStore(t, nil)
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateOptions{Name: "tsrc", Kernel: "test", Rootfs: shared.sshd, MemoryMiB: 256, Net: NetTap}); err != nil {
		t.Fatal(err)
	}
	src := startRetry(t, s, "tsrc")
	guestRun(t, s, "tsrc", "true")
	man, err := s.Snapshot(ctx, "tsrc", "tsnap", SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if man.TapGuest != src.State.GuestAddr+"/30" || man.TapHost != src.State.HostAddr+"/30" {
		t.Errorf("snapshot records tap addresses %s / %s, the source has %s / %s", man.TapGuest, man.TapHost, src.State.GuestAddr, src.State.HostAddr)
	}
	names := []string{"tclone-a", "tclone-b"}
	for _, n := range names {
		if _, err := s.Create(ctx, CreateOptions{Name: n, Snapshot: "tsnap"}); err != nil {
			t.Fatal(err)
		}
	}
	startAll(t, s, names)
	seen := map[string]string{src.State.GuestAddr: "tsrc"}
	for _, n := range names {
		v := status(t, s, n)
		t.Logf("%s: restored at %s, VMM up %v, ready %v; identity %s", n, v.State.GuestAddr, v.State.Boot.VMM, v.State.Boot.Ready, v.State.Identity)
		if other, dup := seen[v.State.GuestAddr]; dup || v.State.GuestAddr == "" {
			t.Fatalf("%s has address %q, as %s does", n, v.State.GuestAddr, other)
		}
		seen[v.State.GuestAddr] = n
		if !strings.Contains(v.State.Identity, "net=set") {
			t.Errorf("%s: identity %q did not move the address", n, v.State.Identity)
		}
		l, err := s.lease(n)
		if err != nil {
			t.Fatal(err)
		}
		out := guestRun(t, s, n, "hostname; cat /sys/class/net/eth0/address; ip -4 route")
		if want := n + "\n" + l.MAC + "\n"; !strings.HasPrefix(out, want) || !strings.Contains(out, "default via "+l.HostAddr.Addr().String()) {
			t.Errorf("%s answered %q, want hostname, MAC %s and a default route via %s", n, out, l.MAC, l.HostAddr.Addr())
		}
	}
	// The guest drops the old address 2s after the move, by a background
	// "sleep 2" of its own: under emulation on a loaded host that can run
	// late, so wait for it (the new address must be there throughout).
	for _, n := range names {
		v := status(t, s, n)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			out := guestRun(t, s, n, "ip -4 -o addr show dev eth0")
			if !strings.Contains(out, v.State.GuestAddr+"/30") {
				t.Errorf("%s: eth0 has %q, without its own address %s", n, out, v.State.GuestAddr)
				break
			}
			if !strings.Contains(out, src.State.GuestAddr+"/") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: eth0 has %q a minute after the move, want %s alone", n, out, v.State.GuestAddr)
				break
			}
		}
	}
	if out := guestRun(t, s, "tsrc", "hostname"); out != "tsrc\n" {
		t.Errorf("the source answered %q after its clones were restored", out)
	}
}

// TestSnapshotDiskFull: a snapshot that runs out of space (a real, small
// tmpfs holding the state directory) fails with a clear error, resumes
// the guest and leaves nothing behind.
func TestSnapshotDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	s := newStore(t, nil)
	ctx := context.Background()
	kp := readFile(t, filepath.Join(s.Layout.SSHDir(), "id_ed25519.pub"))
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
	if err := os.CopyFS(filepath.Join(small, "ssh"), os.DirFS(s.Layout.SSHDir())); err != nil {
		t.Fatal(err)
	}
	s.Layout.State = small
	// Cleanups run last-registered first: kill the VM before the tmpfs
	// holding its record is unmounted.
	t.Cleanup(func() { killAll(s) })
	rootfs := filepath.Join(t.TempDir(), "full.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: kp, SizeMiB: 16})
	if _, err := s.Create(ctx, CreateOptions{Name: "full", Kernel: "test", Rootfs: rootfs, MemoryMiB: 256}); err != nil {
		t.Fatal(err)
	}
	startRetry(t, s, "full")
	_, err := s.Snapshot(ctx, "full", "big", SnapshotOptions{})
	if err == nil || !strings.Contains(err.Error(), "hint: free space") {
		t.Fatalf("snapshot on a full disk: %v", err)
	}
	t.Logf("full disk: %v", err)
	if st := status(t, s, "full"); st.State.Status != StatusRunning {
		t.Fatalf("after the failed snapshot: %+v", st.State)
	}
	if out := guestRun(t, s, "full", "echo alive"); out != "alive\n" {
		t.Fatalf("the guest was not resumed: %q", out)
	}
	ents, _ := os.ReadDir(s.Layout.SnapshotsDir())
	for _, e := range ents {
		if e.Name() != ".locks" {
			t.Errorf("left behind in the snapshot store: %s", e.Name())
		}
	}
}

// startAll starts the VMs called names at once and fails the test if any
// start fails.
func startAll(t *testing.T, s *Store, names []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Start(context.Background(), n, StartOptions{Timeout: bootTimeout})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestWarmSnapshotFor: options that cannot restore a warm snapshot say
// why; an image without one has none, and no reason.
func TestWarmSnapshotFor(t *testing.T) {
	s := newStore(t, nil)
	for _, tc := range []struct {
		name string
		o    CreateOptions
		why  string
	}{
		{"rootfs", CreateOptions{Kernel: "test", Rootfs: shared.sshd}, "not created from an image alone"},
		{"cold", CreateOptions{Image: "img", Cold: true}, "not created from an image alone"},
		{"snapshot", CreateOptions{Snapshot: "snap"}, "not created from an image alone"},
		{"no warm snapshot", CreateOptions{Image: "img"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap, why := s.WarmSnapshotFor(tc.o)
			if snap != nil || !strings.Contains(why, tc.why) || (tc.why == "") != (why == "") {
				t.Errorf("WarmSnapshotFor(%+v) = %v, %q; want none, %q", tc.o, snap, why, tc.why)
			}
		})
	}
}
