package ext4

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/ext4/ext4test"
)

func mkfs(t *testing.T, path string, size int64, args ...string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", append(append([]string{"-q", "-F"}, args...), path)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ext4")
	mkfs(t, good, 32<<20, "-L", "root", "-b", "4096")
	ext2 := filepath.Join(dir, "old.ext2")
	mkfs(t, ext2, 16<<20, "-t", "ext2")
	truncated := filepath.Join(dir, "truncated.ext4")
	mkfs(t, truncated, 32<<20)
	if err := os.Truncate(truncated, 16<<20); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tarHead := make([]byte, 4096)
	copy(tarHead[257:], "ustar")
	tests := []struct {
		name, path, kind, wantErr string
	}{
		{"ext4", good, "ext4", ""},
		{"ext2 mounts with the ext4 driver", ext2, "ext2", ""},
		{"truncated", truncated, "", "is truncated"},
		{"empty", write("empty", nil), "", "not an ext4 filesystem: the file is empty"},
		{"short", write("short", []byte("hello")), "", "only 5 bytes"},
		{"zeros", write("zeros", make([]byte, 8192)), "", "no ext2/3/4 superblock"},
		{"zstd", write("x.zst", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 4096)...)), "", "zstd-compressed (hint: decompress it first)"},
		{"qcow2", write("x.qcow2", append([]byte("QFI\xfb"), make([]byte, 4096)...)), "", "qemu-img convert"},
		{"tar", write("x.tar", tarHead), "", "tar archive"},
		{"directory", dir, "", "not a regular file"},
		{"missing", filepath.Join(dir, "missing"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Check(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Check(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.path) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Kind != tt.kind {
				t.Errorf("kind %q, want %q", info.Kind, tt.kind)
			}
			fi, _ := os.Stat(tt.path)
			if info.Size != fi.Size() {
				t.Errorf("size %d, want %d", info.Size, fi.Size())
			}
		})
	}
	info, _ := Check(good)
	if info.Label != "root" || info.BlockSize != 4096 || len(info.UUID) != 36 {
		t.Errorf("info %+v, want label root, 4 KiB blocks, a UUID", info)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1073741824", 1 << 30},
		{"2G", 2 << 30},
		{"2g", 2 << 30},
		{"512M", 512 << 20},
		{"512MiB", 512 << 20},
		{"512MB", 512 << 20},
		{"1.5G", 3 << 29},
		{"100K", 100 << 10},
		{"1T", 1 << 40},
		{"4096B", 4096},
		{" 3 G ", 3 << 30},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "0", "abc", "1X", "1PB", "1e20"} {
		if _, err := ParseSize(bad); err == nil || !strings.Contains(err.Error(), "invalid size") {
			t.Errorf("ParseSize(%q) = %v, want an invalid size error", bad, err)
		}
	}
}

// tree builds a small directory tree with every kind of entry the
// rootfs builder produces and returns its path. Needs root for owners and
// device nodes.
func tree(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(d, "dev"), 0o755))
	must(os.Mkdir(filepath.Join(d, "home"), 0o755))
	must(os.Mkdir(filepath.Join(d, "home/user"), 0o700))
	must(os.Chown(filepath.Join(d, "home/user"), 1000, 1000))
	must(os.WriteFile(filepath.Join(d, "usr/bin/tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	must(os.Chmod(filepath.Join(d, "usr/bin/tool"), 0o4755|os.ModeSetuid))
	must(os.Link(filepath.Join(d, "usr/bin/tool"), filepath.Join(d, "usr/bin/tool2")))
	must(os.Symlink("usr/bin", filepath.Join(d, "bin")))
	must(os.Symlink("/"+strings.Repeat("x", 90), filepath.Join(d, "long-link")))
	must(unix.Mknod(filepath.Join(d, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Setxattr(filepath.Join(d, "usr/bin/tool"), "user.banger", []byte("yes"), 0))
	must(os.WriteFile(filepath.Join(d, "home/user/notes"), []byte("mine\n"), 0o600))
	must(os.Chown(filepath.Join(d, "home/user/notes"), 1000, 1000))
	must(os.Chmod(filepath.Join(d, "usr/bin/tool"), 0o4755|os.ModeSetuid))
	return d
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for owners and device nodes (CI runs as root)")
	}
}

func TestMakeKeepsTree(t *testing.T) {
	needRoot(t)
	d := tree(t)
	u, err := DirUsage(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	// root, usr, usr/bin, tool (tool2 is the same inode), dev, dev/null,
	// home, home/user, notes, bin, long-link
	if u.Inodes != 11 {
		t.Errorf("DirUsage counted %d inodes, want 11", u.Inodes)
	}
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	if err := Make(context.Background(), img, MakeOptions{Dir: d, Size: DefaultSize(u), Inodes: u.Inodes, Label: "test"}); err != nil {
		t.Fatal(err)
	}
	ext4test.Fsck(t, img)
	info, err := Check(img)
	// mkfs.ext4 drops a last block group too small for its metadata.
	if err != nil || info.Kind != "ext4" || info.Label != "test" || info.Size > DefaultSize(u) || info.Size < DefaultSize(u)-128<<20 {
		t.Fatalf("Check = %+v, %v", info, err)
	}
	tool, _ := ext4test.Stat(t, img, "/usr/bin/tool")
	if tool.Mode != 0o4755 || tool.Links != 2 || tool.Xattrs["user.banger"] != `"yes"` {
		t.Errorf("tool: %+v, want setuid 4755, 2 links, user.banger xattr", tool)
	}
	tool2, _ := ext4test.Stat(t, img, "/usr/bin/tool2")
	if tool2.Ino != tool.Ino {
		t.Errorf("tool2 is inode %d, tool %d: hardlink lost", tool2.Ino, tool.Ino)
	}
	notes, _ := ext4test.Stat(t, img, "/home/user/notes")
	home, _ := ext4test.Stat(t, img, "/home/user")
	if notes.UID != 1000 || notes.GID != 1000 || notes.Mode != 0o600 || home.Mode != 0o700 || home.UID != 1000 {
		t.Errorf("owners/modes: notes %+v, home %+v", notes, home)
	}
	if got := string(ext4test.Cat(t, img, "/home/user/notes")); got != "mine\n" {
		t.Errorf("notes content %q", got)
	}
	if bin, _ := ext4test.Stat(t, img, "/bin"); bin.Type != "symlink" || bin.LinkTarget != "usr/bin" {
		t.Errorf("bin: %+v", bin)
	}
	if l, _ := ext4test.Stat(t, img, "/long-link"); l.LinkTarget != "/"+strings.Repeat("x", 90) {
		t.Errorf("long-link: %+v", l)
	}
	if null, _ := ext4test.Stat(t, img, "/dev/null"); null.Type != "character special" {
		t.Errorf("dev/null: %+v", null)
	}
}

func TestMakeTooSmall(t *testing.T) {
	d := t.TempDir()
	f, err := os.Create(filepath.Join(d, "big"))
	if err != nil {
		t.Fatal(err)
	}
	// Not zeros: mkfs.ext4 stores zero blocks as holes.
	if _, err := f.Write(bytes.Repeat([]byte("banger"), 2<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	err = Make(context.Background(), img, MakeOptions{Dir: d, Size: 8 << 20})
	if !errors.Is(err, ErrTooSmall) {
		t.Fatalf("Make into 8 MiB: %v, want ErrTooSmall", err)
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed Make left %s behind", img)
	}
}

func TestMakeDiskFull(t *testing.T) {
	needRoot(t)
	// A real full disk: a 16 MiB tmpfs receiving 24 MiB of data.
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	d := t.TempDir()
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	if err := os.WriteFile(filepath.Join(d, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(mnt, "rootfs.ext4")
	err := Make(context.Background(), img, MakeOptions{Dir: d, Size: 64 << 20})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Make onto a full disk: %v, want ENOSPC", err)
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Fatalf("failed Make left %v", ents)
	}
}

func TestMakeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	if err := Make(ctx, img, MakeOptions{Dir: t.TempDir(), Size: 64 << 20}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Make with a canceled context: %v", err)
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("canceled Make left %s behind", img)
	}
}

func TestDefaultSize(t *testing.T) {
	u := Usage{Bytes: 200 << 20, Inodes: 10000}
	got := DefaultSize(u)
	if got < u.Bytes+MinHeadroom || got%(1<<20) != 0 || got > u.Bytes*2+MinHeadroom {
		t.Fatalf("DefaultSize(%+v) = %d", u, got)
	}
	big := Usage{Bytes: 4 << 30, Inodes: 100000}
	if got := DefaultSize(big); got < big.Bytes+big.Bytes/4 || got > big.Bytes*3/2+64<<20 {
		t.Fatalf("DefaultSize(%+v) = %d, want a quarter of the content free", big, got)
	}
	if MinSize(u) >= got || MinSize(u) < u.Bytes {
		t.Fatalf("MinSize(%+v) = %d", u, MinSize(u))
	}
}
