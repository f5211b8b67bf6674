package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestExtractVmlinuxOnly(t *testing.T) {
	s := newSandbox(t)
	files, err := s.extract(t, bundle(t, file("vmlinux", "\x7fELF kernel")), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := []File{{Path: "vmlinux", Size: 11, SHA256: sum("\x7fELF kernel"), Mode: "-rw-r--r--"}}
	if !slices.Equal(files, want) {
		t.Errorf("files = %+v, want %+v", files, want)
	}
	if got := s.tree(t); !slices.Equal(got, []string{"vmlinux"}) {
		t.Errorf("extracted tree = %q", got)
	}
	b, err := os.ReadFile(filepath.Join(s.out, "vmlinux"))
	if err != nil || string(b) != "\x7fELF kernel" {
		t.Errorf("vmlinux = %q, %v", b, err)
	}
}

// TestExtractFullBundle covers a bundle with every root, a leading "./",
// implicit and late directory entries, relative symlinks inside modules/
// (one through another, one out to vmlinux), setuid bits and an xattr that
// must not be installed, a world-writable directory that must not stay so,
// foreign ownership, and a restrictive umask that must not change the
// modes.
func TestExtractFullBundle(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	data := bundle(t,
		dir("./"),
		ent{name: "./vmlinux", body: "kernel", mode: 0o6755},
		ent{name: "./initrd.img", body: "initrd", mode: 0o400},
		dir("./modules/"),
		file("./modules/6.12.0/kernel/drivers/net/virtio_net.ko", "ko1"),
		ent{name: "./modules/6.12.0/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "./modules/6.12.0/modules.dep", body: "deps", mode: 0o666, pax: map[string]string{"SCHILY.xattr.user.evil": "1"}},
		symlink("./modules/latest", "6.12.0"),
		symlink("./modules/6.12.0/net", "kernel/drivers/net"),
		symlink("./modules/virtio", "latest/net/virtio_net.ko"),
		symlink("./modules/6.12.0/vmlinux", "../../vmlinux"),
		symlink("./modules/dangling", "6.12.0/not-there"),
	)
	s := newSandbox(t)
	files, err := s.extract(t, data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: "initrd.img", Size: 6, SHA256: sum("initrd"), Mode: "-rw-------"},
		{Path: "modules", Mode: "drwxr-xr-x"},
		{Path: "modules/6.12.0", Mode: "drwxr-xr-x"}, // 01777 in the bundle: never world-writable
		{Path: "modules/6.12.0/kernel", Mode: "drwxr-xr-x"},
		{Path: "modules/6.12.0/kernel/drivers", Mode: "drwxr-xr-x"},
		{Path: "modules/6.12.0/kernel/drivers/net", Mode: "drwxr-xr-x"},
		{Path: "modules/6.12.0/kernel/drivers/net/virtio_net.ko", Size: 3, SHA256: sum("ko1"), Mode: "-rw-r--r--"},
		{Path: "modules/6.12.0/modules.dep", Size: 4, SHA256: sum("deps"), Mode: "-rw-r--r--"},
		{Path: "modules/6.12.0/net", Mode: "Lrwxrwxrwx", LinkTarget: "kernel/drivers/net"},
		{Path: "modules/6.12.0/vmlinux", Mode: "Lrwxrwxrwx", LinkTarget: "../../vmlinux"},
		{Path: "modules/dangling", Mode: "Lrwxrwxrwx", LinkTarget: "6.12.0/not-there"},
		{Path: "modules/latest", Mode: "Lrwxrwxrwx", LinkTarget: "6.12.0"},
		{Path: "modules/virtio", Mode: "Lrwxrwxrwx", LinkTarget: "latest/net/virtio_net.ko"},
		{Path: "vmlinux", Size: 6, SHA256: sum("kernel"), Mode: "-rwxr-xr-x"},
	}
	if !slices.Equal(files, want) {
		t.Errorf("files:\n got %+v\nwant %+v", files, want)
	}
	var paths []string
	for _, f := range want {
		paths = append(paths, f.Path)
	}
	if got := s.tree(t); !slices.Equal(got, paths) {
		t.Errorf("extracted tree = %q, want %q", got, paths)
	}
	// What is on disk matches the manifest: modes (no setuid, setgid or
	// sticky bit, umask ignored), link targets, owner, no xattrs.
	for _, f := range want {
		p := filepath.Join(s.out, f.Path)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().String() != f.Mode {
			t.Errorf("%s: mode on disk %s, manifest %s", f.Path, fi.Mode(), f.Mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
			t.Errorf("%s: owned by %d:%d, want the invoking user", f.Path, st.Uid, st.Gid)
		}
		if f.LinkTarget != "" {
			if target, err := os.Readlink(p); err != nil || target != f.LinkTarget {
				t.Errorf("%s: link target %q, %v", f.Path, target, err)
			}
		}
	}
	if n, err := syscall.Listxattr(filepath.Join(s.out, "modules/6.12.0/modules.dep"), make([]byte, 1024)); err != nil || n != 0 {
		t.Errorf("modules.dep has %d bytes of xattr names (err %v), want none", n, err)
	}
	b, err := os.ReadFile(filepath.Join(s.out, "modules/virtio"))
	if err != nil || string(b) != "ko1" {
		t.Errorf("reading through the symlink chain: %q, %v", b, err)
	}
}

// TestExtractTarRecordPadding: GNU tar pads archives with zeros to a 10 KiB
// record after the end marker; that is accepted, anything else is not.
func TestExtractTarRecordPadding(t *testing.T) {
	raw := tarBytes(t, file("vmlinux", "kernel"))
	padded := append(slices.Clone(raw), make([]byte, 10240-len(raw)%10240)...)
	if _, err := newSandbox(t).extract(t, compress(t, padded), Limits{}); err != nil {
		t.Errorf("zero padding after the end marker: %v", err)
	}
	junk := append(slices.Clone(raw), []byte("trailing")...)
	_, err := newSandbox(t).extract(t, compress(t, junk), Limits{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("data after the end-of-archive marker")) {
		t.Errorf("data after the end marker: err = %v", err)
	}
}
