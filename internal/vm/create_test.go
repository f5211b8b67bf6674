package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/stagedir"
	"github.com/thaloco/banger/internal/vmm"
)

// vmsDirEntries lists the entries of the VMs directory, hidden ones included.
func vmsDirEntries(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Layout.VMsDir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCreate(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name, rootfs, net, ready string
	}{
		{"plain", shared.plain, "", ReadyConsole},
		{"sshd", shared.sshd, "", ReadySSH},
		{"offline", shared.sshd, NetNone, ReadyConsole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := s.Create(ctx, CreateOptions{Name: tc.name, Kernel: "test", Rootfs: tc.rootfs, Net: tc.net})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if v.Config.Ready != tc.ready || v.Config.VMM != VMMQEMU || v.State.Status != StatusCreated {
				t.Errorf("%s: config %+v, state %+v", tc.name, v.Config, v.State)
			}
			if v.Config.CPUs != DefaultCPUs || v.Config.MemoryMiB != DefaultMemoryMiB {
				t.Errorf("%s: defaults not applied: %+v", tc.name, v.Config)
			}
		})
	}
	// The disk is the VM's own copy.
	v, err := s.Get("plain")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v.DiskPath(), []byte("scribble"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(shared.plain); strings.HasPrefix(string(data), "scribble") {
		t.Fatal("writing the VM's disk changed the source rootfs")
	}
	ls, err := s.List()
	if err != nil || len(ls) != 3 || ls[0].Name != "offline" || ls[2].VM.Config.Net != NetUser {
		t.Fatalf("List = %+v, %v", ls, err)
	}
}

func TestCreateFromImageAndImageUsers(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	ks := kernelstore.New(s.Layout.KernelsDir)
	if _, err := image.New(s.Layout.ImagesDir()).Register(ctx, "tiny", shared.plain, image.RegisterOptions{
		KernelRef: "test", CheckKernel: func(n string) error { _, err := ks.Get(n); return err },
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"b", "a"} {
		if _, err := s.Create(ctx, CreateOptions{Name: n, Image: "tiny", DiskSize: 64 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "other", Kernel: "test", Rootfs: shared.plain}); err != nil {
		t.Fatal(err)
	}
	users, err := s.ImageUsers("tiny")
	if err != nil || strings.Join(users, ",") != "a,b" {
		t.Fatalf("ImageUsers = %v, %v; want a,b", users, err)
	}
	v, _ := s.Get("a")
	if v.Config.Kernel != "test" || v.Config.DiskSize != 64<<20 || v.Config.DiskKind() != "qcow2 overlay of image tiny" {
		t.Fatalf("config = %+v", v.Config)
	}
	// The filesystem was grown with the disk.
	if got := fsSize(t, guestView(t, v)); got != 64<<20 {
		t.Fatalf("filesystem is %d bytes; want 64 MiB", got)
	}
}

// guestView is a raw copy of what v's guest sees on its disk (for a qcow2
// overlay, converted by qemu-img).
func guestView(t *testing.T, v *VM) string {
	t.Helper()
	if v.Config.Disk.Format != DiskQcow2 {
		return v.DiskPath()
	}
	raw := filepath.Join(t.TempDir(), "view.raw")
	if out, err := exec.Command("qemu-img", "convert", "-U", "-O", "raw", v.DiskPath(), raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	return raw
}

// fsSize is the size of the ext4 filesystem in the raw file path.
func fsSize(t *testing.T, path string) int64 {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", path).Output()
	if err != nil {
		t.Fatalf("dumpe2fs: %v", err)
	}
	var count, size int64
	for _, l := range strings.Split(string(out), "\n") {
		k, val, _ := strings.Cut(l, ":")
		switch k {
		case "Block count":
			count, _ = strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		case "Block size":
			size, _ = strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		}
	}
	return count * size
}

func TestCreateErrors(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateOptions{Name: "taken", Kernel: "test", Rootfs: shared.plain}); err != nil {
		t.Fatal(err)
	}
	notExt4 := filepath.Join(t.TempDir(), "junk.img")
	if err := os.WriteFile(notExt4, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	base := CreateOptions{Name: "new", Kernel: "test", Rootfs: shared.plain}
	for _, tc := range []struct {
		name string
		edit func(*CreateOptions)
		want string
	}{
		{"clash", func(o *CreateOptions) { o.Name = "taken" }, `VM "taken" already exists (hint:`},
		{"bad name", func(o *CreateOptions) { o.Name = "Bad/Name" }, "invalid vm name"},
		{"unknown image", func(o *CreateOptions) { o.Rootfs, o.Kernel, o.Image = "", "", "nope" }, `image "nope" not found (hint:`},
		{"unknown kernel", func(o *CreateOptions) { o.Kernel = "generic-6.12" }, `(hint: run "banger kernel pull generic-6.12")`},
		{"no image", func(o *CreateOptions) { o.Rootfs = "" }, "no image given (hint:"},
		{"rootfs without kernel", func(o *CreateOptions) { o.Kernel = "" }, "rootfs needs kernel"},
		{"not ext4", func(o *CreateOptions) { o.Rootfs = notExt4 }, "ext"},
		{"too little memory", func(o *CreateOptions) { o.MemoryMiB = 64 }, "memory 64M is too little"},
		{"too much memory", func(o *CreateOptions) { o.MemoryMiB = 1 << 30 }, "more than this host's"},
		{"cpus", func(o *CreateOptions) { o.CPUs = -1 }, "cpus -1 is out of range"},
		{"small disk", func(o *CreateOptions) { o.DiskSize = 1 << 20 }, "disk-size 1M is smaller than the root filesystem"},
		{"jailer without firecracker", func(o *CreateOptions) { o.Jailer, o.VMM = true, VMMQEMU }, "jailer needs Firecracker"},
		{"jailer id", func(o *CreateOptions) { o.Name, o.Jailer, o.VMM, o.Net = "a.b", true, VMMFirecracker, NetNone }, "cannot be a jailer id"},
		{"forward without user net", func(o *CreateOptions) {
			o.Net, o.Forwards = NetNone, []Forward{{"127.0.0.1", 8080, 80, "tcp"}}
		}, "publish forwards ports only with net user"},
		{"duplicate forward", func(o *CreateOptions) {
			o.Forwards = []Forward{{"127.0.0.1", 8080, 80, "tcp"}, {"127.0.0.1", 8080, 81, "tcp"}}
		}, "both bind host port 8080/tcp"},
		{"overlapping forward", func(o *CreateOptions) {
			o.Forwards = []Forward{{"0.0.0.0", 8080, 80, "tcp"}, {"127.0.0.1", 8080, 81, "tcp"}}
		}, "both bind host port 8080/tcp"},
		{"forward host name", func(o *CreateOptions) {
			o.Forwards = []Forward{{"localhost", 8080, 80, "tcp"}}
		}, `host address "localhost" is not an IPv4 address`},
		{"unknown vmm", func(o *CreateOptions) { o.VMM = "xen" }, `unknown VMM "xen"`},
		{"firecracker user net", func(o *CreateOptions) { o.VMM, o.Net = VMMFirecracker, NetUser }, "firecracker has no user-mode networking"},
		{"bad net", func(o *CreateOptions) { o.Net = "bridge" }, `unknown network mode "bridge"`},
		{"ssh without net", func(o *CreateOptions) { o.Net, o.Ready = NetNone, ReadySSH }, "ready ssh needs a network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, err := s.Create(ctx, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
			if got := vmsDirEntries(t, s); len(got) != 1 || got[0] != "taken" {
				t.Fatalf("VMs directory holds %v after a failed create", got)
			}
		})
	}
}

// TestCreateInterrupted cancels a create half-way: nothing may be left.
func TestCreateInterrupted(t *testing.T) {
	s := newStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Create(ctx, CreateOptions{Name: "x", Kernel: "test", Rootfs: shared.plain})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if got := vmsDirEntries(t, s); len(got) != 0 {
		t.Fatalf("VMs directory holds %v after an interrupted create", got)
	}
}

// TestCreateDiskFull creates a VM on a real filesystem too small for its
// disk (a tmpfs mounted for the test).
func TestCreateDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	s := newStore(t, nil)
	// Fill the rootfs so that the sparse copy needs real space.
	full := filepath.Join(t.TempDir(), "full.ext4")
	if out, err := exec.Command("cp", shared.plain, full).CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	if out, err := exec.Command("sh", "-c", "dd if=/dev/urandom of="+full+" bs=1M seek=16 count=12 conv=notrunc status=none").CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	vms := s.Layout.VMsDir()
	if err := os.MkdirAll(vms, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", vms).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", vms).Run() })
	_, err := s.Create(context.Background(), CreateOptions{Name: "big", Kernel: "test", Rootfs: full})
	if err == nil || !strings.Contains(err.Error(), "hint: free space") {
		t.Fatalf("err = %v; want a disk-full error with a hint", err)
	}
	if got := vmsDirEntries(t, s); len(got) != 0 {
		t.Fatalf("VMs directory holds %v after a failed create", got)
	}
}

// TestJailedVMRemovesItsJail: a jailed Firecracker VM records the choice,
// its jail lives under <state>/jail, and rm deletes the jail with the VM.
func TestJailedVMRemovesItsJail(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	v, err := s.Create(ctx, CreateOptions{Name: "jailed", Kernel: "test", Rootfs: shared.plain, VMM: VMMFirecracker, Jailer: true, Net: NetNone})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Config.Jailer {
		t.Fatal("Jailer not recorded in the VM's config")
	}
	jail := s.jailDir(v)
	if want := filepath.Join(s.Layout.State, "jail", "firecracker", "jailed"); jail != want {
		t.Fatalf("jail dir %q, want %q", jail, want)
	}
	if err := os.MkdirAll(filepath.Join(jail, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "jailed", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(jail); !os.IsNotExist(err) {
		t.Fatalf("jail survived vm rm: %v", err)
	}
}

// TestCreateJailedSocketTooLong: a jailed VM's API socket lies deeper
// (<state>/jail/firecracker/<name>/root/fc.sock) than its console socket
// (<state>/vms/<name>/console.sock). A name whose jail socket is one byte
// too long is refused by create, with the hint, though the same name
// without the jailer is fine.
func TestCreateJailedSocketTooLong(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	jailSock := func(name string) string {
		return filepath.Join(s.Layout.State, "jail", "firecracker", name, "root", "fc.sock")
	}
	n := 108 - (len(jailSock("j")) - 1)
	if n < 1 || n > 64 {
		t.Fatalf("state directory %s leaves no room for a name of 1 to 64 bytes", s.Layout.State)
	}
	name := strings.Repeat("j", n)
	if len(jailSock(name)) != 108 || len(filepath.Join(s.Layout.VM(name), "console.sock")) > 107 {
		t.Fatalf("bad test setup: %s", jailSock(name))
	}
	_, err := s.Create(ctx, CreateOptions{Name: name, Kernel: "test", Rootfs: shared.plain, VMM: VMMFirecracker, Jailer: true, Net: NetNone})
	if err == nil || !strings.Contains(err.Error(), "firecracker API socket path "+jailSock(name)) ||
		!errors.As(err, new(*vmm.SocketPathError)) {
		t.Fatalf("create of a jailed VM with a 108-byte API socket path: %v", err)
	}
	if got := vmsDirEntries(t, s); len(got) != 0 {
		t.Fatalf("VMs directory holds %v after a refused create", got)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: name, Kernel: "test", Rootfs: shared.plain, VMM: VMMFirecracker, Net: NetNone}); err != nil {
		t.Fatalf("the same VM without the jailer: %v", err)
	}
}

// TestListSweepsLeftovers: directories that a killed create or removal
// left (as SIGKILL does: no deferred cleanup runs) are removed by the next
// list, except those of a name a command holds the lock of.
func TestListSweepsLeftovers(t *testing.T) {
	s := newStore(t, nil)
	vms := s.Layout.VMsDir()
	for _, d := range []string{".tmp-a-0123456789ab", ".old-b-0123456789ab", ".tmp-busy-0123456789ab"} {
		if err := os.MkdirAll(filepath.Join(vms, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.lock(context.Background(), "busy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(vms)
	var left []string
	for _, e := range ents {
		if e.Name() != ".locks" {
			left = append(left, e.Name())
		}
	}
	if !slices.Equal(left, []string{".tmp-busy-0123456789ab"}) {
		t.Errorf("left after vm list: %v, want only the locked name's", left)
	}
	l.Unlock()
}

// TestSweepsLegacyLeftovers: the ".tmp~NAME~…" and ".rm~NAME~…"
// directories that older bangers left are removed by the next list, and
// by the next create of their name, but not a VM's directory, a VM's
// whose name looks like one, or those of a name a command holds.
func TestSweepsLegacyLeftovers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	vms := s.Layout.VMsDir()
	for _, name := range []string{"a", "tmp-a"} {
		if _, err := s.Create(ctx, CreateOptions{Name: name, Kernel: "test", Rootfs: shared.plain, Net: NetNone}); err != nil {
			t.Fatal(err)
		}
	}
	mkdirs := func(dirs ...string) {
		t.Helper()
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(vms, d, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	left := func() []string {
		ents, _ := os.ReadDir(vms)
		var names []string
		for _, e := range ents {
			if e.Name() != ".locks" {
				names = append(names, e.Name())
			}
		}
		return names
	}
	mkdirs(".tmp~a~123", ".rm~a~456", ".rm~b~1733190000", ".tmp~busy~789")
	l, err := s.lock(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("list", func(t *testing.T) {
		if _, err := s.List(); err != nil {
			t.Fatal(err)
		}
		if got, want := left(), []string{".tmp~busy~789", "a", "tmp-a"}; !slices.Equal(got, want) {
			t.Errorf("left after vm list: %v, want %v", got, want)
		}
	})
	l.Unlock()
	t.Run("create", func(t *testing.T) {
		mkdirs(".tmp~c~123", ".rm~c~456", ".tmp~cc~789")
		if _, err := s.Create(ctx, CreateOptions{Name: "c", Kernel: "test", Rootfs: shared.plain, Net: NetNone}); err != nil {
			t.Fatal(err)
		}
		if got, want := left(), []string{".tmp~busy~789", ".tmp~cc~789", "a", "c", "tmp-a"}; !slices.Equal(got, want) {
			t.Errorf("left after vm create c: %v, want %v", got, want)
		}
	})
}

// TestStartChecksKernel: a VM does not boot a vmlinux that differs from
// what its kernel's manifest recorded.
func TestStartChecksKernel(t *testing.T) {
	s := newStore(t, nil)
	kernels := privateKernels(t, s)
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateOptions{Name: "tk", Kernel: "test", Rootfs: shared.plain, Net: NetNone}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(kernels, "test", "vmlinux"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^b[0]}, 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = s.Start(ctx, "tk", StartOptions{})
	if err == nil || !strings.Contains(err.Error(), `kernel "test" does not match its manifest: vmlinux: sha256`) {
		t.Fatalf("start with a changed vmlinux: %v", err)
	}
	if v := status(t, s, "tk"); v.State.Status.active() || v.State.PID != 0 {
		t.Errorf("after the refused start: %+v", v.State)
	}
}

// TestRemoveRacesCreate runs `image rm` (without --force) and `kernel rm`
// against VM creates from that image, at once, many times: a removal must
// never succeed while a create from it also succeeds (the VM would be
// made from, or left with, something that is gone).
func TestRemoveRacesCreate(t *testing.T) {
	s := newStore(t, nil)
	kernels := privateKernels(t, s)
	ctx := context.Background()
	ks := kernelstore.New(kernels)
	images := image.New(s.Layout.ImagesDir())
	imageUsers := s.ImageUsers
	kernelUsers := func(k string) ([]string, error) {
		u, err := images.KernelUsers(k)
		if err != nil {
			return nil, err
		}
		v, err := s.KernelUsers(k)
		return append(u, v...), err
	}
	violations := 0
	for i := range 12 {
		img, vm := fmt.Sprintf("img%d", i), fmt.Sprintf("vm%d", i)
		if _, err := images.Register(ctx, img, shared.plain, image.RegisterOptions{
			KernelRef: "test", CheckKernel: func(n string) error { _, err := ks.Get(n); return err },
		}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var createErr, rmErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, createErr = s.Create(ctx, CreateOptions{Name: vm, Image: img}) }()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Millisecond)
			rmErr = images.Remove(ctx, img, false, imageUsers)
		}()
		wg.Wait()
		if createErr == nil && rmErr == nil {
			violations++
			t.Errorf("round %d: VM %s was created from image %s, which was removed at the same time", i, vm, img)
		}
		var inUse *stagedir.InUseError
		if rmErr != nil && createErr == nil && !errors.As(rmErr, &inUse) {
			t.Errorf("round %d: image rm failed with %v, want an in-use error", i, rmErr)
		}
		if createErr == nil {
			// The VM boots kernel "test": kernel rm must refuse it.
			err := ks.Remove(ctx, "test", false, kernelUsers)
			if !errors.As(err, &inUse) || !strings.Contains(err.Error(), vm) {
				t.Fatalf("kernel rm while VM %s boots it: %v", vm, err)
			}
			if err := s.Remove(ctx, vm, true); err != nil {
				t.Fatal(err)
			}
		}
		_ = images.Remove(ctx, img, true, nil)
	}
	t.Logf("%d violations in 12 rounds", violations)
}

// privateKernels gives s a copy of the shared kernels directory that the
// test may change or remove kernels from, and returns its path.
func privateKernels(t testing.TB, s *Store) string {
	t.Helper()
	kernels := filepath.Join(t.TempDir(), "kernels")
	if err := os.CopyFS(kernels, os.DirFS(shared.kernels)); err != nil {
		t.Fatal(err)
	}
	s.Layout.KernelsDir = kernels
	return kernels
}
