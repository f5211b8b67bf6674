package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/qcow2"
	"github.com/thaloco/banger/internal/snapshot"
	"github.com/thaloco/banger/internal/stagedir"
)

// registerImage registers rootfs as image name in s's state, with the
// image store refusing to drop a rootfs that overlays use (as the CLI's
// is), and returns that store and the image.
func registerImage(t testing.TB, s *Store, name, rootfs string) (*image.Store, *image.Manifest) {
	t.Helper()
	images := image.NewWithOptions(s.Layout.ImagesDir(), image.Options{Overlays: s.OverlayUsers})
	ks := kernelstore.New(s.Layout.KernelsDir)
	m, err := images.Register(context.Background(), name, rootfs, image.RegisterOptions{
		KernelRef: "test", CheckKernel: func(n string) error { _, err := ks.Get(n); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	return images, m
}

// readOnlyOpens checks that process pid holds path open, read-only only.
func readOnlyOpens(t *testing.T, pid int, path string) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, _ := os.Readlink(filepath.Join(dir, e.Name())); target != path {
			continue
		}
		n++
		info := readFile(t, fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(l, "flags:"); ok {
				flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
				if err != nil || flags&syscall.O_ACCMODE != syscall.O_RDONLY {
					t.Errorf("QEMU (pid %d) holds %s open with flags %s: not read-only", pid, path, strings.TrimSpace(v))
				}
			}
		}
	}
	if n == 0 {
		t.Errorf("QEMU (pid %d) does not hold %s open", pid, path)
	}
}

// TestOverlayDisk boots a VM (real QEMU) whose disk is a qcow2 overlay of
// an image's rootfs, grown with --disk-size: the guest's filesystem has
// the new size, its writes survive a stop and start, a snapshot of it
// restores into a clone with its own overlay, the image's rootfs is read
// only and never changes, and the image cannot be removed or replaced
// while the overlays exist, not even with force.
func TestOverlayDisk(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	kp := readFile(t, filepath.Join(s.Layout.SSHDir(), "id_ed25519.pub"))
	rootfs := filepath.Join(t.TempDir(), "ov.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{AuthorizedKey: kp, SizeMiB: 48})
	images, im := registerImage(t, s, "ov", rootfs)
	base := im.RootfsPath()
	baseSum := sha256File(t, base)

	v, err := s.Create(ctx, CreateOptions{Name: "a", Image: "ov", DiskSize: 128 << 20, MemoryMiB: 256})
	if err != nil {
		t.Fatal(err)
	}
	want := Disk{Format: DiskQcow2, Backing: base, BackingSHA256: im.RootfsSHA256}
	if v.Config.Disk != want || v.Config.DiskKind() != "qcow2 overlay of image ov" || v.Config.DiskSize != 128<<20 || filepath.Base(v.DiskPath()) != "disk.qcow2" {
		t.Fatalf("disk %+v (%s, %d bytes at %s); want %+v", v.Config.Disk, v.Config.DiskKind(), v.Config.DiskSize, v.DiskPath(), want)
	}
	if h, err := qcow2.ReadHeader(v.DiskPath()); err != nil || h.BackingFile != base || h.Size != 128<<20 {
		t.Fatalf("overlay header %+v, %v", h, err)
	}
	if st, err := os.Stat(v.DiskPath()); err != nil || st.Size() > 8<<20 || st.Mode().Perm() != 0o600 {
		t.Fatalf("overlay %v, %v: want a small private file", st, err)
	}
	if v.Config.Ready != ReadySSH {
		t.Fatalf("readiness %q: the image's dropbear was not found", v.Config.Ready)
	}

	a := startRetry(t, s, "a")
	readOnlyOpens(t, a.State.PID, base)
	// The guest's filesystem fills the 128 MiB disk (the image's is 48).
	df := strings.Fields(guestRun(t, s, "a", "df -k / | tail -1"))
	if len(df) < 2 {
		t.Fatalf("guest df: %q", df)
	}
	if kb, _ := strconv.Atoi(df[1]); kb < 110<<10 || kb > 128<<10 {
		t.Fatalf("guest df: %q; want a filesystem of about 128 MiB", df)
	}
	token := fmt.Sprintf("written-%d", time.Now().UnixNano())
	guestRun(t, s, "a", "echo "+token+" > /persist.txt; sync")

	man, err := s.Snapshot(ctx, "a", "snapa", SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if man.DiskFormat != snapshot.DiskQcow2 || man.DiskBacking != base || man.DiskBackingSHA256 != im.RootfsSHA256 || man.DiskVirtualSize != 128<<20 ||
		filepath.Base(man.DiskPath()) != snapshot.OverlayDiskFile || man.DiskSize > 16<<20 {
		t.Fatalf("snapshot disk: %+v", man)
	}
	if h, err := qcow2.ReadHeader(man.DiskPath()); err != nil || h.BackingFile != base {
		t.Fatalf("the snapshot's overlay: %+v, %v", h, err)
	}

	// The guest's writes survive a stop and a start.
	if _, err := s.Stop(ctx, "a", StopOptions{}); err != nil {
		t.Fatal(err)
	}
	startRetry(t, s, "a")
	if out := guestRun(t, s, "a", "cat /persist.txt"); out != token+"\n" {
		t.Fatalf("after stop and start the guest reads %q, want %q", out, token)
	}

	// While overlays use it, the image is neither removed nor replaced,
	// with force or without.
	for _, force := range []bool{false, true} {
		err := images.Remove(ctx, "ov", force, s.ImageUsers)
		var inUse *stagedir.InUseError
		if !errors.As(err, &inUse) || !inUse.Backing || !slices.Equal(inUse.Users, []string{"VM a", "snapshot snapa"}) {
			t.Fatalf("image rm (force %v) while overlays use it: %v", force, err)
		}
	}
	ks := kernelstore.New(s.Layout.KernelsDir)
	_, err = images.Register(ctx, "ov", rootfs, image.RegisterOptions{KernelRef: "test", Force: true, CheckKernel: func(n string) error { _, err := ks.Get(n); return err }})
	if !errors.As(err, new(*stagedir.InUseError)) || !strings.Contains(err.Error(), "VM a, snapshot snapa") {
		t.Fatalf("image register --force over a backing file: %v", err)
	}
	if _, err := images.Get("ov"); err != nil {
		t.Fatalf("the image after refused removals: %v", err)
	}

	// A clone of the snapshot: its own copy of the overlay, over the same
	// rootfs; it reads what the source wrote, and its own writes stay its.
	b, err := s.Create(ctx, CreateOptions{Name: "b", Snapshot: "snapa"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Config.Disk != want || b.Config.DiskSize != 128<<20 || b.Config.Image != "ov" {
		t.Fatalf("clone's disk %+v, %d bytes, image %q", b.Config.Disk, b.Config.DiskSize, b.Config.Image)
	}
	if _, err := s.Start(ctx, "b", StartOptions{Timeout: bootTimeout}); err != nil {
		t.Fatal(err)
	}
	if st := status(t, s, "b"); st.State.Path != PathRestore || !strings.Contains(strings.Join(st.State.Argv, " "), "format=qcow2") {
		t.Fatalf("clone: path %q, argv %q", st.State.Path, st.State.Argv)
	}
	if out := guestRun(t, s, "b", "cat /persist.txt; echo clone > /clone.txt; sync"); out != token+"\n" {
		t.Fatalf("the clone reads %q, want %q", out, token)
	}
	if out := guestRun(t, s, "a", "cat /clone.txt 2>&1 || echo absent"); !strings.Contains(out, "absent") {
		t.Fatalf("the clone's write reached the source: %q", out)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := s.Stop(ctx, n, StopOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got := sha256File(t, base); got != baseSum {
		t.Fatalf("the image's rootfs changed (sha256 %s, was %s)", got, baseSum)
	}

	// A backing file that went away is named, with the image, at start;
	// a snapshot over it cannot be restored.
	if err := os.Rename(base, base+".away"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Start(ctx, "a", StartOptions{Timeout: bootTimeout})
	if err == nil || !strings.Contains(err.Error(), `starting VM "a": its disk is an overlay of image "ov", whose rootfs `+base+" is gone") || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("start with the backing file gone: %v", err)
	}
	_, err = s.Create(ctx, CreateOptions{Name: "c", Snapshot: "snapa"})
	if !errors.As(err, new(*StaleError)) || !strings.Contains(err.Error(), `image "ov"`) {
		t.Fatalf("clone of a snapshot whose backing file is gone: %v", err)
	}
	if err := os.Rename(base+".away", base); err != nil {
		t.Fatal(err)
	}

	// Once nothing overlays it, the image goes.
	for _, n := range []string{"a", "b"} {
		if err := s.Remove(ctx, n, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := images.Remove(ctx, "ov", false, s.ImageUsers); !errors.As(err, new(*stagedir.InUseError)) || !strings.Contains(err.Error(), "snapshot snapa") {
		t.Fatalf("image rm while a snapshot overlays it: %v", err)
	}
	if err := snapshot.New(s.Layout).Remove(ctx, "snapa", false, s.SnapshotUsers); err != nil {
		t.Fatal(err)
	}
	if err := images.Remove(ctx, "ov", false, s.ImageUsers); err != nil {
		t.Fatalf("image rm once nothing overlays it: %v", err)
	}
}

// TestOverlayUsers: what counts as overlaying an image, without booting:
// overlay VMs (a broken one by its disk's header), snapshots over it, not
// the image's own warm snapshot, not raw VMs, not another image's.
func TestOverlayUsers(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	images, im := registerImage(t, s, "one", shared.plain)
	registerImage(t, s, "two", shared.plain)
	for _, o := range []CreateOptions{
		{Name: "ov1", Image: "one"},
		{Name: "ov2", Image: "one"},
		{Name: "raw", Image: "one", VMM: VMMFirecracker, Net: NetNone},
		{Name: "other", Image: "two"},
	} {
		if _, err := s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// ov2's record is broken: its disk still overlays the image.
	if err := os.WriteFile(filepath.Join(s.Layout.VM("ov2"), configFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Snapshots as Snapshot writes them: a user's, and the warm one.
	for _, snap := range []struct{ name, warmFor string }{{"mine", ""}, {"one.warm", "one"}} {
		dir := filepath.Join(s.Layout.SnapshotsDir(), snap.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		disk := filepath.Join(dir, snapshot.OverlayDiskFile)
		if err := qcow2.Create(disk, im.RootfsPath(), 0); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(disk)
		data, _ := json.Marshal(snapshot.Manifest{Name: snap.name, Image: "one", WarmFor: snap.warmFor, DiskSize: st.Size(),
			DiskFormat: snapshot.DiskQcow2, DiskBacking: im.RootfsPath(), DiskVirtualSize: im.RootfsSize})
		if err := os.WriteFile(filepath.Join(dir, snapshot.ManifestFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users, err := s.OverlayUsers("one")
	if want := []string{"VM ov1", "VM ov2", "snapshot mine"}; err != nil || !slices.Equal(users, want) {
		t.Fatalf("OverlayUsers(one) = %q, %v; want %q", users, err, want)
	}
	if users, err := s.OverlayUsers("two"); err != nil || !slices.Equal(users, []string{"VM other"}) {
		t.Fatalf("OverlayUsers(two) = %q, %v", users, err)
	}
	if v, _ := s.Get("raw"); v.Config.DiskKind() != "raw (copy)" {
		t.Fatalf("Firecracker VM's disk is %q, want raw (copy)", v.Config.DiskKind())
	}
	// Neither force nor the lack of VM users lets the image go.
	if err := images.Remove(ctx, "one", true, nil); !errors.As(err, new(*stagedir.InUseError)) {
		t.Fatalf("image rm --force under overlays: %v", err)
	}
	for _, n := range []string{"ov1", "ov2"} {
		if err := s.Remove(ctx, n, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := snapshot.New(s.Layout).Remove(ctx, "mine", true, nil); err != nil {
		t.Fatal(err)
	}
	// The raw VM is an ordinary user: refused without force, not with.
	if err := images.Remove(ctx, "one", false, s.ImageUsers); err == nil || !strings.Contains(err.Error(), "used by VM(s) raw") {
		t.Fatalf("image rm with a raw VM from it: %v", err)
	}
	if err := images.Remove(ctx, "one", true, s.ImageUsers); err != nil {
		t.Fatalf("image rm --force once only the warm snapshot and a raw VM use it: %v", err)
	}
}

// TestOverlayFallbacks: where an overlay cannot be had, the disk is a raw
// copy, grown on the host, and says so.
func TestOverlayFallbacks(t *testing.T) {
	s := newStore(t, nil)
	var notes []string
	s.opts.Logf = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	ctx := context.Background()
	registerImage(t, s, "img", shared.plain)

	// Growing an overlay needs qemu-storage-daemon: without it on PATH,
	// --disk-size makes a raw copy, grown by resize2fs on the host.
	bin := t.TempDir()
	for _, tool := range []string{"resize2fs", "e2fsck", "debugfs", "dumpe2fs"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	v, err := s.Create(ctx, CreateOptions{Name: "grown", Image: "img", DiskSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if v.Config.Disk.Format != DiskRaw || v.Config.DiskKind() != "raw (copy)" || filepath.Base(v.DiskPath()) != "disk.ext4" {
		t.Fatalf("disk %+v (%s)", v.Config.Disk, v.Config.DiskKind())
	}
	if got := fsSize(t, v.DiskPath()); got != 64<<20 {
		t.Fatalf("filesystem is %d bytes, want 64 MiB", got)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `VM "grown" gets a raw copy of image "img", not an overlay: growing an overlay's filesystem needs a FUSE export: qemu-storage-daemon not found`) {
		t.Fatalf("notes %q", notes)
	}
	// Where qemu-storage-daemon is there but FUSE mounts fail (a stand-in
	// daemon failing as it does on such hosts: as root here they work),
	// the same, and the overlay made first is gone.
	fake := "#!/bin/sh\necho 'fuse: failed to open /dev/fuse: Permission denied' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, qcow2.StorageDaemon), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err = s.Create(ctx, CreateOptions{Name: "nofuse", Image: "img", DiskSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if v.Config.DiskKind() != "raw (copy)" || fsSize(t, v.DiskPath()) != 64<<20 || !notExist(filepath.Join(v.Dir, overlayFile)) || !notExist(filepath.Join(v.Dir, growMount)) {
		t.Fatalf("disk %+v (%s); directory %v", v.Config.Disk, v.Config.DiskKind(), dirNames(t, v.Dir))
	}
	if len(notes) != 2 || !strings.Contains(notes[1], `VM "nofuse" gets a raw copy of image "img", not an overlay: growing an overlay's filesystem needs a FUSE export: exporting `) ||
		!strings.Contains(notes[1], "Permission denied") {
		t.Fatalf("notes %q", notes)
	}
	notes = notes[:1]
	// Without --disk-size nothing is missing: an overlay.
	if v, err := s.Create(ctx, CreateOptions{Name: "plain", Image: "img"}); err != nil || v.Config.Disk.Format != DiskQcow2 {
		t.Fatalf("VM without --disk-size: %+v, %v", v, err)
	}
	// A --rootfs file is the user's to change: copied, never overlaid.
	if v, err := s.Create(ctx, CreateOptions{Name: "own", Kernel: "test", Rootfs: shared.plain}); err != nil || v.Config.DiskKind() != "raw (copy)" {
		t.Fatalf("VM from --rootfs: %+v, %v", v, err)
	}
	if len(notes) != 1 {
		t.Fatalf("notes %q", notes)
	}
}

// TestFirecrackerDiskReflink: a Firecracker VM's disk is raw; on a file
// system that shares blocks (XFS on a loop device) it is a reflink of the
// image's rootfs, taking no new space, and says so.
func TestFirecrackerDiskReflink(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v: %s (hint: apt-get install xfsprogs)", err, out)
	}
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, state).CombinedOutput(); err != nil {
		t.Fatalf("mounting an XFS loop filesystem: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", state).Run() })
	if err := os.CopyFS(filepath.Join(state, "ssh"), os.DirFS(s.Layout.SSHDir())); err != nil {
		t.Fatal(err)
	}
	s.Layout.State = state
	_, im := registerImage(t, s, "img", shared.plain)
	var before, after syscall.Statfs_t
	syscall.Sync()
	if err := syscall.Statfs(state, &before); err != nil {
		t.Fatal(err)
	}
	v, err := s.Create(ctx, CreateOptions{Name: "fc", Image: "img", VMM: VMMFirecracker, Net: NetNone})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Sync()
	if err := syscall.Statfs(state, &after); err != nil {
		t.Fatal(err)
	}
	if v.Config.DiskKind() != "raw (reflink)" || v.Config.Disk.Format != DiskRaw {
		t.Fatalf("disk %+v (%s), want raw (reflink)", v.Config.Disk, v.Config.DiskKind())
	}
	if sha256File(t, v.DiskPath()) != im.RootfsSHA256 {
		t.Fatal("the reflinked disk differs from the image's rootfs")
	}
	if used := int64(before.Bfree-after.Bfree) * before.Bsize; used > 1<<20 {
		t.Fatalf("the disk took %d bytes of new space; a reflink shares the image's", used)
	}
}

// TestSweepKilledGrow: a create killed while it grew an overlay leaves
// its temp directory with a FUSE export mounted whose daemon is dead; the
// next list unmounts it and removes the directory.
func TestSweepKilledGrow(t *testing.T) {
	s := newStore(t, nil)
	tmp := filepath.Join(s.Layout.VMsDir(), ".tmp-x-0123456789ab")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(tmp, overlayFile)
	if err := qcow2.Create(disk, shared.plain, 64<<20); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(tmp, growMount)
	if err := os.WriteFile(mnt, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(qcow2.StorageDaemon,
		"--blockdev", `{"driver":"file","node-name":"file","filename":"`+disk+`"}`,
		"--blockdev", `{"driver":"qcow2","node-name":"disk","file":"file"}`,
		"--export", `{"type":"fuse","id":"e","node-name":"disk","mountpoint":"`+mnt+`","writable":true}`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if st, err := os.Stat(mnt); err == nil && st.Size() == 64<<20 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the export did not appear")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if mounts := readFile(t, "/proc/self/mounts"); !strings.Contains(mounts, mnt) {
		t.Fatal("the killed daemon's export is not mounted: the test does not reproduce a killed create")
	}
	if _, err := s.List(); err != nil {
		t.Fatal(err)
	}
	if !notExist(tmp) {
		t.Fatalf("the killed create's directory %s is still there", tmp)
	}
	if mounts := readFile(t, "/proc/self/mounts"); strings.Contains(mounts, mnt) {
		t.Fatalf("the dead export is still mounted")
	}
}

// TestOverlayChecksAtStart: before QEMU runs, start refuses an overlay
// whose header names another backing file, or whose image was replaced
// (as an older banger could do), naming the image and the way out.
func TestOverlayChecksAtStart(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	_, im := registerImage(t, s, "img", shared.plain)
	v, err := s.Create(ctx, CreateOptions{Name: "a", Image: "img", Net: NetNone})
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(im.Dir(), image.ManifestFile)
	orig := readFile(t, manifest)
	if err := os.WriteFile(manifest, []byte(strings.Replace(orig, im.RootfsSHA256, strings.Repeat("0", 64), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.Start(ctx, "a", StartOptions{})
	var be *BackingError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), `starting VM "a": its disk is an overlay of image "img", which was replaced since (rootfs sha256 000000000000…, the overlay's `+im.RootfsSHA256[:12]+"…) (hint: remove what uses it") {
		t.Fatalf("start over a replaced image: %v", err)
	}
	if err := os.WriteFile(manifest, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.ext4")
	if err := os.WriteFile(other, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(v.DiskPath()); err != nil {
		t.Fatal(err)
	}
	if err := qcow2.Create(v.DiskPath(), other, 0); err != nil {
		t.Fatal(err)
	}
	_, err = s.Start(ctx, "a", StartOptions{})
	if err == nil || !strings.Contains(err.Error(), `overlays "`+other+`", not the `+im.RootfsPath()+" it was made over") {
		t.Fatalf("start of an overlay of another file: %v", err)
	}
	if st := status(t, s, "a"); st.State.PID != 0 || st.State.Status.active() {
		t.Fatalf("a refused start left %+v", st.State)
	}
}

// BenchmarkCreate times Store.Create of a VM from an image whose rootfs
// holds 192 MiB of data, with the disk each kind of VM gets here: a QEMU
// VM's qcow2 overlay, a Firecracker VM's raw copy (a reflink only on file
// systems that share blocks). disk-bytes/op is what the VM's disk takes.
func BenchmarkCreate(b *testing.B) {
	s := newStore(b, nil)
	tree := b.TempDir()
	data := make([]byte, 192<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	if err := os.WriteFile(filepath.Join(tree, "data"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	rootfs := filepath.Join(b.TempDir(), "big.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, rootfs, "256M").CombinedOutput(); err != nil {
		b.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	registerImage(b, s, "big", rootfs)
	for _, bc := range []struct{ name, vmm string }{{"overlay", VMMQEMU}, {"copy", VMMFirecracker}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			var usage int64
			i := 0
			for b.Loop() {
				i++
				v, err := s.Create(ctx, CreateOptions{Name: fmt.Sprintf("%s%d", bc.name, i), Image: "big", VMM: bc.vmm, Net: NetNone})
				if err != nil {
					b.Fatal(err)
				}
				usage += snapshot.Usage(v.DiskPath())
			}
			b.ReportMetric(float64(usage)/float64(i), "disk-bytes/op")
		})
	}
}

// TestGrowChecksFirst: a filesystem mounted since its last check (an image
// made from a used disk) is checked by e2fsck before resize2fs grows it,
// as resize2fs demands; a clean one is grown at once.
func TestGrowChecksFirst(t *testing.T) {
	setup(t)
	ctx := context.Background()
	dir := t.TempDir()
	used := filepath.Join(dir, "used.ext4")
	if err := os.WriteFile(used, []byte(readFile(t, shared.plain)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Last mounted after its last check.
	if out, err := exec.Command("debugfs", "-w", "-R", "ssv mtime 20990101", used).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v: %s", err, out)
	}
	probe := filepath.Join(dir, "probe.ext4")
	if err := os.WriteFile(probe, []byte(readFile(t, used)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(probe, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("resize2fs", probe).CombinedOutput(); err == nil || !strings.Contains(string(out), "e2fsck -f") {
		t.Fatalf("resize2fs of a filesystem mounted since its check: %v: %s; the test needs it to refuse", err, out)
	}
	if err := growDisk(ctx, used, 64<<20); err != nil {
		t.Fatal(err)
	}
	if got := fsSize(t, used); got != 64<<20 {
		t.Fatalf("filesystem is %d bytes, want 64 MiB", got)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
