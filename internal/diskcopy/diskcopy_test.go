package diskcopy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// extent is a data region [Start, End) of a file.
type extent struct{ Start, End int64 }

// dataMap lists a file's data regions with SEEK_DATA/SEEK_HOLE.
func dataMap(t *testing.T, path string) []extent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var out []extent
	for pos := int64(0); pos < fi.Size(); {
		s, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := unix.Seek(int(f.Fd()), s, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, extent{s, e})
		pos = e
	}
	return out
}

// writeSparse creates a file of size bytes holding data at the given
// offsets (each a run of len(fill) bytes) and holes everywhere else.
func writeSparse(t *testing.T, path string, size int64, fill []byte, offsets ...int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range offsets {
		if _, err := f.WriteAt(fill, off); err != nil {
			t.Fatal(err)
		}
	}
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i%251 + 1)
	}
	return p
}

func sameContent(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ", a, b)
	}
}

func TestCopyKeepsHoles(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		size    int64
		offsets []int64
	}{
		{"empty", 0, nil},
		{"all hole", 32 * mib, nil},
		{"data then trailing hole", 32 * mib, []int64{0}},
		{"leading hole then data", 32 * mib, []int64{31 * mib}},
		{"scattered", 64 * mib, []int64{0, 5 * mib, 6*mib + 4096, 40 * mib}},
		{"dense", 4 * mib, []int64{0, mib, 2 * mib, 3 * mib}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
			writeSparse(t, src, tt.size, pattern(mib), tt.offsets...)
			if err := os.Chmod(src, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := Copy(context.Background(), dst, src); err != nil {
				t.Fatal(err)
			}
			sameContent(t, src, dst)
			sm, dm := dataMap(t, src), dataMap(t, dst)
			if len(sm) != len(dm) {
				t.Fatalf("data regions: src %v, dst %v", sm, dm)
			}
			for i := range sm {
				if sm[i] != dm[i] {
					t.Fatalf("data regions: src %v, dst %v", sm, dm)
				}
			}
			fi, err := os.Stat(dst)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o640 {
				t.Errorf("dst mode %v, want 0640", fi.Mode().Perm())
			}
			var ss, ds syscall.Stat_t
			syscall.Stat(src, &ss)
			syscall.Stat(dst, &ds)
			if ds.Blocks > ss.Blocks {
				t.Errorf("dst allocates %d blocks, src only %d", ds.Blocks, ss.Blocks)
			}
			assertOnly(t, dir, "src.img", "dst.img")
		})
	}
}

// assertOnly fails unless dir holds exactly the named entries (no temp
// files left behind).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	names = slices.Sorted(slices.Values(names))
	if len(got) != len(names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
	for i := range names {
		if got[i] != names[i] {
			t.Fatalf("%s holds %v, want %v", dir, got, names)
		}
	}
}

func TestCopyCanceledLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	writeSparse(t, src, 8<<20, pattern(1<<20), 0)
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Copy(ctx, dst, src)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Copy with a canceled context: %v, want context.Canceled", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatalf("dst changed to %d bytes after a failed copy", len(b))
	}
	assertOnly(t, dir, "a.img", "b.img")
}

func TestCopyRejectsNonRegular(t *testing.T) {
	dir := t.TempDir()
	err := Copy(context.Background(), filepath.Join(dir, "x"), dir)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("not a regular file")) {
		t.Fatalf("copying a directory: %v", err)
	}
	if err := Copy(context.Background(), filepath.Join(dir, "x"), filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copying a missing file: %v", err)
	}
	assertOnly(t, dir)
}

// mountFS mounts a filesystem for the test (root only) and unmounts it at
// cleanup. args are mount(8) arguments before the target.
func mountFS(t *testing.T, args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a filesystem needs root (CI runs as root)")
	}
	mnt := t.TempDir()
	out, err := exec.Command("mount", append(args, mnt)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mount %v: %v: %s", args, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

func TestCopyDiskFull(t *testing.T) {
	// A real full disk: a 4 MiB tmpfs receiving a 16 MiB file.
	mnt := mountFS(t, "-t", "tmpfs", "-o", "size=4m", "tmpfs")
	src := filepath.Join(t.TempDir(), "big.img")
	writeSparse(t, src, 16<<20, pattern(1<<20), 0, 4<<20, 8<<20, 12<<20, 15<<20)
	err := Copy(context.Background(), filepath.Join(mnt, "big.img"), src)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("copy onto a full disk: %v, want ENOSPC", err)
	}
	assertOnly(t, mnt)
}

func TestCopyAcrossFilesystems(t *testing.T) {
	// ext4 (the temp dir) to tmpfs: copy_file_range refuses, so the
	// buffered path runs; it must keep holes and skip zero blocks too.
	mnt := mountFS(t, "-t", "tmpfs", "-o", "size=64m", "tmpfs")
	src, dst := filepath.Join(t.TempDir(), "src.img"), filepath.Join(mnt, "dst.img")
	data := pattern(1 << 20)
	copy(data[64<<10:128<<10], make([]byte, 64<<10)) // a zero run inside the data
	writeSparse(t, src, 48<<20, data, 0, 20<<20)
	m, err := CopyMethod(context.Background(), dst, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m != Sparse {
		t.Errorf("copy across filesystems reports %q, want %q", m, Sparse)
	}
	sameContent(t, src, dst)
	var ds syscall.Stat_t
	if err := syscall.Stat(dst, &ds); err != nil {
		t.Fatal(err)
	}
	if got, want := ds.Blocks*512, int64(2<<20-2*(64<<10)); got != want {
		t.Fatalf("dst allocates %d bytes, want %d (two 1 MiB runs minus their zero blocks)", got, want)
	}
	assertOnly(t, mnt, "dst.img")
}

func TestCopyReflinks(t *testing.T) {
	// A real reflink-capable filesystem: XFS on a loop device.
	if os.Geteuid() != 0 {
		t.Skip("mounting a filesystem needs root (CI runs as root)")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Fatal("mkfs.xfs not found (hint: apt-get install xfsprogs, see scripts/install-deps.sh)")
	}
	img := filepath.Join(t.TempDir(), "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 320<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v: %s", err, out)
	}
	mnt := mountFS(t, "-o", "loop", img)
	src, dst := filepath.Join(mnt, "src.img"), filepath.Join(mnt, "dst.img")
	writeSparse(t, src, 64<<20, pattern(1<<20), 0, 10<<20, 20<<20, 30<<20, 40<<20, 50<<20, 60<<20)
	var before, after unix.Statfs_t
	unix.Sync()
	if err := unix.Statfs(mnt, &before); err != nil {
		t.Fatal(err)
	}
	m, err := CopyMethod(context.Background(), dst, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m != Reflink {
		t.Errorf("copy on XFS reports %q, want %q", m, Reflink)
	}
	unix.Sync()
	if err := unix.Statfs(mnt, &after); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, dst)
	used := int64(before.Bfree-after.Bfree) * before.Bsize
	if used > 1<<20 {
		t.Fatalf("copy used %d bytes of new space; a reflink shares the 7 MiB of data", used)
	}
}

// TestCopySkipZeros copies a memfd (what QEMU's guest RAM is) whose
// allocated pages are partly zero: the copy has the same bytes, holes
// where the memfd had none but only zeros, and the permission asked for.
func TestCopySkipZeros(t *testing.T) {
	const mib = 1 << 20
	fd, err := unix.MemfdCreate("diskcopy-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	mem := os.NewFile(uintptr(fd), "memfd")
	defer mem.Close()
	if err := mem.Truncate(16 * mib); err != nil {
		t.Fatal(err)
	}
	// 4 MiB allocated but zero, then two pages of data, then a hole.
	if _, err := mem.WriteAt(make([]byte, 4*mib), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.WriteAt(pattern(8192), 4*mib); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("/proc/self/fd", strconv.Itoa(fd))
	if got := dataMap(t, src); len(got) == 0 || got[0].Start != 0 {
		t.Fatalf("memfd data map %v: want allocated zeros at 0", got)
	}
	dst := filepath.Join(t.TempDir(), "memory")
	if err := CopyWith(context.Background(), dst, src, Options{SkipZeros: true, Perm: 0o600}); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, dst)
	if got, want := dataMap(t, dst), []extent{{4 * mib, 4*mib + 8192}}; !slices.Equal(got, want) {
		t.Errorf("copy's data map = %v, want %v (zeros left as holes)", got, want)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 16*mib {
		t.Errorf("copy is %v, %d bytes; want -rw------- and %d bytes", fi.Mode(), fi.Size(), 16*mib)
	}
}
