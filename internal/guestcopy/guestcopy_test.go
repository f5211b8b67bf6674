package guestcopy_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guestcopy"
	"github.com/thaloco/banger/internal/guesttest"
)

// TestGuestCopy boots one guest and copies to and from it: a tree with
// modes, times and links, a 1 GiB sparse file, every error the copy
// names, and copies interrupted half-way.
func TestGuestCopy(t *testing.T) {
	v := bootVM(t)
	c, err := guestcopy.New(t.Context(), v.ssh)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Run("Tree", func(t *testing.T) { testTree(t, v, c) })
	t.Run("Files", func(t *testing.T) { testFiles(t, v, c) })
	t.Run("Sparse", func(t *testing.T) { testSparse(t, v, c) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, v, c) })
	t.Run("Interrupted", func(t *testing.T) { testInterrupted(t, v, c) })
	t.Run("NoSFTPServer", func(t *testing.T) { testNoSFTP(t, v) })

}

// listing prints a tree the same way on the host (GNU tools) and in the
// guest (busybox): each entry's mode and mtime (not for links, whose
// times are not kept), each link's target and each file's sha256.
const listing = `find . ! -type l | sort | while read -r f; do stat -c '%n %a %Y %F' "$f"; done
find . -type l | sort | while read -r f; do echo "$f -> $(readlink "$f")"; done
find . -type f | sort | xargs sha256sum`

// makeTree builds the test tree at dir: files 0600, 0755, 0644 and an
// empty one, a 0700 subdirectory, an empty 0750 one, a relative and an
// absolute symbolic link, all with distinct mtimes.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	t0 := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, d := range []string{"", "sub", "emptydir"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "secret.txt"), []byte("alpha\n"), 0o600, t0)
	writeFile(t, filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755, t0.Add(time.Hour))
	writeFile(t, filepath.Join(dir, "sub", "deep.bin"), randomBytes(t, 300<<10+17), 0o644, t0.Add(2*time.Hour))
	writeFile(t, filepath.Join(dir, "sub", "empty"), nil, 0o640, t0.Add(3*time.Hour))
	for link, target := range map[string]string{"link": "secret.txt", "sub/abs": "/etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range []struct {
		name string
		mode os.FileMode
	}{{"sub", 0o700}, {"emptydir", 0o750}, {"", 0o755}} {
		p := filepath.Join(dir, d.name)
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
		mt := t0.Add(time.Duration(10+i) * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

func testTree(t *testing.T, v *testVM, c *guestcopy.Client) {
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	want := hostSh(t, "cd "+src+" && "+listing)
	if !strings.Contains(want, "./sub 700 ") || !strings.Contains(want, "./link -> secret.txt") {
		t.Fatalf("the test tree is not what it should be:\n%s", want)
	}
	rec := guestcopy.Options{Recursive: true}

	// Host to guest, as a new directory.
	if err := c.Upload(ctx, []string{src}, "/root/up", rec); err != nil {
		t.Fatal(err)
	}
	if got := v.sh(t, "cd /root/up && "+listing); got != want {
		t.Errorf("uploaded tree differs:\n--- guest\n%s--- host\n%s", got, want)
	}
	// Into an existing directory: /root/up/tree.
	if err := c.Upload(ctx, []string{src}, "/root/up", rec); err != nil {
		t.Fatal(err)
	}
	if got := v.sh(t, "cd /root/up/tree && "+listing); got != want {
		t.Errorf("tree uploaded into a directory differs:\n--- guest\n%s--- host\n%s", got, want)
	}
	// Again: merges, replacing files.
	if err := os.Chmod(filepath.Join(src, "secret.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "secret.txt"), []byte("beta\n"), 0o600, time.Unix(1e9, 0))
	if err := c.Upload(ctx, []string{src}, "/root/up", rec); err != nil {
		t.Fatal(err)
	}
	if got := v.sh(t, "cat /root/up/tree/secret.txt; stat -c %Y /root/up/tree/secret.txt; find /root -name '.banger-cp-*'"); got != "beta\n1000000000\n" {
		t.Errorf("after the merge: %q", got)
	}

	// Guest to host, as a new directory, and into one.
	want = hostSh(t, "cd "+src+" && "+listing)
	dl := t.TempDir()
	if err := c.Download(ctx, []string{"/root/up/tree"}, filepath.Join(dl, "new"), rec); err != nil {
		t.Fatal(err)
	}
	if got := hostSh(t, "cd "+dl+"/new && "+listing); got != want {
		t.Errorf("downloaded tree differs:\n--- host copy\n%s--- original\n%s", got, want)
	}
	if err := c.Download(ctx, []string{"/root/up/tree/"}, dl, rec); err != nil {
		t.Fatal(err)
	}
	if got := hostSh(t, "cd "+dl+"/tree && "+listing); got != want {
		t.Errorf("tree downloaded into a directory differs:\n--- host copy\n%s--- original\n%s", got, want)
	}
	if got := hostSh(t, "ls -A "+dl); got != "new\ntree\n" {
		t.Errorf("the host directory holds %q, want new and tree only", got)
	}
}

func testFiles(t *testing.T, v *testVM, c *guestcopy.Client) {
	ctx := t.Context()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	writeFile(t, a, []byte("file a\n"), 0o640, mt)
	writeFile(t, b, []byte("file b\n"), 0o604, mt)
	if err := os.Symlink("a.txt", filepath.Join(dir, "la")); err != nil {
		t.Fatal(err)
	}
	v.sh(t, "mkdir -p /root/files && echo old > /root/files/a.txt")
	for _, tc := range []struct {
		srcs  []string
		dst   string
		check string
		want  string
	}{
		// Into a directory, replacing a file there.
		{[]string{a, b}, "/root/files", "cd /root/files && stat -c '%n %a %Y' a.txt b.txt && cat a.txt b.txt",
			"a.txt 640 1577934245\nb.txt 604 1577934245\nfile a\nfile b\n"},
		// A new name; a trailing slash on an existing directory.
		{[]string{a}, "/root/files/renamed", "cat /root/files/renamed", "file a\n"},
		{[]string{b}, "/root/files/", "cat /root/files/b.txt", "file b\n"},
		// Without -r a link is followed.
		{[]string{filepath.Join(dir, "la")}, "/root/files/followed", "stat -c %F /root/files/followed; cat /root/files/followed", "regular file\nfile a\n"},
		// Relative guest paths start at the home directory.
		{[]string{a}, "files/rel", "cat /root/files/rel", "file a\n"},
	} {
		if err := c.Upload(ctx, tc.srcs, tc.dst, guestcopy.Options{}); err != nil {
			t.Errorf("upload %v to %s: %v", tc.srcs, tc.dst, err)
			continue
		}
		if got := v.sh(t, tc.check); got != tc.want {
			t.Errorf("upload %v to %s: %q, want %q", tc.srcs, tc.dst, got, tc.want)
		}
	}
	out := t.TempDir()
	if err := c.Download(ctx, []string{"/root/files/a.txt", "files/b.txt"}, out, guestcopy.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := hostSh(t, "cd "+out+" && stat -c '%n %a %Y' a.txt b.txt && cat a.txt b.txt"); got != "a.txt 640 1577934245\nb.txt 604 1577934245\nfile a\nfile b\n" {
		t.Errorf("downloaded files: %q", got)
	}
}

// testSparse copies a 1 GiB file holding about 1 MiB of data both ways:
// the copies keep its holes (a zero-filled region becomes one too) and
// its bytes.
func testSparse(t *testing.T, v *testVM, c *guestcopy.Client) {
	ctx := t.Context()
	dir := t.TempDir()
	sp := filepath.Join(dir, "sparse.img")
	f, err := os.Create(sp)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 30
	for _, w := range []struct {
		off  int64
		data []byte
	}{
		{0, randomBytes(t, 4096)},
		{300 << 20, randomBytes(t, 1<<20)},
		{500 << 20, make([]byte, 1<<20)}, // allocated zeros
		{size - 4096, randomBytes(t, 4096)},
	} {
		if _, err := f.WriteAt(w.data, w.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The same dd commands on both sides: the data regions, a hole, the
	// zero-filled region.
	const regions = `for r in 0:1 76800:256 128000:256 262143:1 100000:1; do dd if=$F bs=4096 skip=${r%:*} count=${r#*:} 2>/dev/null | sha256sum; done`
	want := hostSh(t, "F="+sp+"; "+regions)

	var p progressCount
	t0 := time.Now()
	err = c.Upload(ctx, []string{sp}, "/root/sparse.img", guestcopy.Options{Progress: p.start})
	up := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.total != size || p.done != size {
		t.Errorf("progress: total %d, done %d; want %d", p.total, p.done, size)
	}
	if got := v.sh(t, "F=/root/sparse.img; "+regions); got != want {
		t.Errorf("the guest's copy differs:\n%s\nwant\n%s", got, want)
	}
	st := strings.Fields(v.sh(t, "stat -c '%s %b %B' /root/sparse.img"))
	blocks, _ := strconv.ParseInt(st[1], 10, 64)
	unit, _ := strconv.ParseInt(st[2], 10, 64)
	if st[0] != strconv.Itoa(size) || blocks*unit > 4<<20 {
		t.Errorf("the guest's copy is %s bytes with %s allocated, want 1 GiB with about 1 MiB", st[0], mib(blocks*unit))
	}

	back := filepath.Join(dir, "back.img")
	t0 = time.Now()
	err = c.Download(ctx, []string{"/root/sparse.img"}, back, guestcopy.Options{})
	down := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	hostSh(t, "cmp "+sp+" "+back)
	var hs syscall.Stat_t
	if err := syscall.Stat(back, &hs); err != nil {
		t.Fatal(err)
	}
	if hs.Size != size || hs.Blocks*512 > 4<<20 {
		t.Errorf("the host's copy is %d bytes with %s allocated, want 1 GiB with about 1 MiB", hs.Size, mib(hs.Blocks*512))
	}
	t.Logf("1 GiB sparse file (1 MiB of data): to the guest in %v, back in %v",
		up.Round(time.Millisecond), down.Round(time.Millisecond))

	// Without perl in the guest there is no data map: every byte crosses,
	// and the host still writes only the data.
	v.sh(t, "mv /usr/bin/perl /root/perl.off")
	defer v.sh(t, "mv /root/perl.off /usr/bin/perl")
	v.sh(t, "truncate -s 9M /root/mid.img && printf hello | dd of=/root/mid.img bs=1 seek=5000000 conv=notrunc 2>/dev/null")
	wantMid := filepath.Join(dir, "want-mid.img")
	hostSh(t, "truncate -s 9M "+wantMid+" && printf hello | dd of="+wantMid+" bs=1 seek=5000000 conv=notrunc 2>/dev/null")
	mid := filepath.Join(dir, "mid.img")
	if err := c.Download(ctx, []string{"/root/mid.img"}, mid, guestcopy.Options{}); err != nil {
		t.Fatal(err)
	}
	hostSh(t, "cmp "+wantMid+" "+mid)
	if err := syscall.Stat(mid, &hs); err != nil {
		t.Fatal(err)
	}
	if hs.Blocks*512 > 64<<10 {
		t.Errorf("the host's copy of a 9 MiB file holding 5 bytes has %s allocated", mib(hs.Blocks*512))
	}
}

// progressCount records what a copy reports; it cancels once done
// reaches at (when set).
type progressCount struct {
	total, done int64
	at          int64
	cancel      func()
}

func (p *progressCount) start(total int64) guestcopy.Progress {
	p.total = total
	return p
}

func (p *progressCount) Add(n int64) {
	p.done += n
	if p.at > 0 && p.done >= p.at {
		p.cancel()
	}
}

func testErrors(t *testing.T, v *testVM, c *guestcopy.Client) {
	ctx := t.Context()
	dir := t.TempDir()
	small := filepath.Join(dir, "small.txt")
	writeFile(t, small, []byte("small\n"), 0o644, time.Now())
	big := filepath.Join(dir, "big.bin")
	writeFile(t, big, randomBytes(t, 8<<20), 0o644, time.Now())
	special := filepath.Join(dir, "withfifo")
	if err := os.Mkdir(special, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(special, "ok.txt"), []byte("ok\n"), 0o644, time.Now())
	if err := syscall.Mkfifo(filepath.Join(special, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	v.sh(t, "echo data > /root/plain.txt")
	if err := c.Upload(ctx, []string{big}, "/root/big.bin", guestcopy.Options{}); err != nil {
		t.Fatal(err)
	}
	hostFull := filepath.Join(dir, "hostfull")
	if err := os.Mkdir(hostFull, 0o755); err != nil {
		t.Fatal(err)
	}
	hostSh(t, "mount -t tmpfs -o size=2m tmpfs "+hostFull)
	t.Cleanup(func() { _ = syscall.Unmount(hostFull, syscall.MNT_DETACH) })
	out := t.TempDir()

	for _, tc := range []struct {
		name     string
		copy     func() error
		want     error
		guest    bool
		path     string
		leftover func() string // what must be empty afterwards
	}{
		{"missing in the guest", func() error {
			return c.Download(ctx, []string{"/nope/file"}, out, guestcopy.Options{})
		}, guestcopy.ErrNotExist, true, "/nope/file", nil},
		{"missing on the host", func() error {
			return c.Upload(ctx, []string{filepath.Join(dir, "nope")}, "/root", guestcopy.Options{})
		}, guestcopy.ErrNotExist, false, filepath.Join(dir, "nope"), nil},
		{"guest directory missing", func() error {
			return c.Upload(ctx, []string{small}, "/nope/x", guestcopy.Options{})
		}, guestcopy.ErrNotExist, true, "/nope", nil},
		{"directory without recursion", func() error {
			return c.Download(ctx, []string{"/root"}, out, guestcopy.Options{})
		}, guestcopy.ErrIsDir, true, "/root", nil},
		{"several sources, no directory", func() error {
			return c.Upload(ctx, []string{small, big}, "/root/notadir", guestcopy.Options{})
		}, guestcopy.ErrNotDir, true, "/root/notadir", nil},
		{"a file into a directory that is not one", func() error {
			return c.Upload(ctx, []string{small}, "/root/plain.txt/", guestcopy.Options{})
		}, guestcopy.ErrNotDir, true, "/root/plain.txt/", nil},
		{"a directory onto a file", func() error {
			return c.Upload(ctx, []string{special}, "/root/plain.txt", guestcopy.Options{Recursive: true})
		}, guestcopy.ErrOverwriteNonDir, true, "/root/plain.txt", nil},
		{"a file onto a directory", func() error {
			return c.Download(ctx, []string{"/root/plain.txt"}, filepath.Join(out, "d"), guestcopy.Options{})
		}, guestcopy.ErrOverwriteDir, false, filepath.Join(out, "d", "plain.txt"), nil},
		{"immutable guest directory", func() error {
			return c.Upload(ctx, []string{small}, "/locked/", guestcopy.Options{})
		}, guestcopy.ErrPermission, true, "/locked", func() string { return v.sh(t, "ls -A /locked") }},
		{"unreadable guest file", func() error {
			return c.Download(ctx, []string{"/sys/bus/platform/drivers_probe"}, out, guestcopy.Options{})
		}, guestcopy.ErrPermission, true, "/sys/bus/platform/drivers_probe", func() string { return hostSh(t, "ls -A "+out+" | grep -vx d || true") }},
		{"read-only guest filesystem", func() error {
			return c.Upload(ctx, []string{small}, "/ro", guestcopy.Options{})
		}, guestcopy.ErrReadOnly, true, "/ro", func() string { return v.sh(t, "ls -A /ro") }},
		{"guest disk full", func() error {
			return c.Upload(ctx, []string{big}, "/small/big.bin", guestcopy.Options{})
		}, guestcopy.ErrNoSpace, true, "/small/big.bin", func() string { return v.sh(t, "ls -A /small") }},
		{"host disk full", func() error {
			return c.Download(ctx, []string{"/root/big.bin"}, hostFull, guestcopy.Options{})
		}, guestcopy.ErrNoSpace, false, filepath.Join(hostFull, "big.bin"), func() string { return hostSh(t, "ls -A "+hostFull) }},
		{"a FIFO is skipped", func() error {
			return c.Upload(ctx, []string{special}, "/root/withfifo", guestcopy.Options{Recursive: true})
		}, guestcopy.ErrUnsupported, false, filepath.Join(special, "fifo"), nil},
	} {
		if err := os.MkdirAll(filepath.Join(out, "d", "plain.txt"), 0o755); err != nil {
			t.Fatal(err)
		}
		err := tc.copy()
		var ce *guestcopy.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Guest != tc.guest || ce.Path != tc.path {
			t.Errorf("%s: got %v (%#v), want %v on guest=%v path %s", tc.name, err, ce, tc.want, tc.guest, tc.path)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if tc.leftover != nil {
			if left := tc.leftover(); left != "" {
				t.Errorf("%s: left %q behind", tc.name, left)
			}
		}
		if err := os.RemoveAll(filepath.Join(out, "d")); err != nil {
			t.Fatal(err)
		}
	}
	// The FIFO was skipped, the rest copied.
	if got := v.sh(t, "ls -A /root/withfifo"); got != "ok.txt\n" {
		t.Errorf("after skipping the FIFO the guest has %q", got)
	}
	if !errors.Is(guestcopy.ErrNotExist, fs.ErrNotExist) || !errors.Is(guestcopy.ErrPermission, fs.ErrPermission) {
		t.Error("the sentinels do not match the fs errors")
	}
}

// testInterrupted cancels copies half-way both ways: nothing is left on
// either side, not even a temporary file.
func testInterrupted(t *testing.T, v *testVM, c *guestcopy.Client) {
	v.sh(t, "rm -rf /root/int && mkdir /root/int && dd if=/dev/urandom of=/root/int.img bs=1M count=24 2>/dev/null")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := &progressCount{at: 4 << 20, cancel: cancel}
	err := c.Download(ctx, []string{"/root/int.img"}, filepath.Join(dir, "int.img"), guestcopy.Options{Progress: p.start})
	if !errors.Is(err, context.Canceled) || p.done >= 24<<20 {
		t.Errorf("interrupted download: %v after %s", err, mib(p.done))
	}
	if left := hostSh(t, "ls -A "+dir); left != "" {
		t.Errorf("the interrupted download left %q", left)
	}

	src := filepath.Join(dir, "random.bin")
	writeFile(t, src, randomBytes(t, 48<<20), 0o644, time.Now())
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	p = &progressCount{at: 4 << 20, cancel: cancel}
	err = c.Upload(ctx, []string{src}, "/root/int/", guestcopy.Options{Progress: p.start})
	if !errors.Is(err, context.Canceled) || p.done >= 48<<20 {
		t.Errorf("interrupted upload: %v after %s", err, mib(p.done))
	}
	if left := v.sh(t, "ls -A /root/int"); left != "" {
		t.Errorf("the interrupted upload left %q in the guest", left)
	}
}

// testNoSFTP: a guest whose SSH server has no SFTP program to run.
func testNoSFTP(t *testing.T, v *testVM) {
	v.sh(t, "mv "+guesttest.DropbearSFTPServer+" /root/sftp-server.off")
	defer v.sh(t, "mv /root/sftp-server.off "+guesttest.DropbearSFTPServer)
	_, err := guestcopy.New(t.Context(), v.ssh)
	if !errors.Is(err, guestcopy.ErrNoSFTP) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("without sftp-server: %v, want ErrNoSFTP with the shell's complaint", err)
	}
	t.Logf("without sftp-server: %v", err)
}
