package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestExtractPastDirectoryDescriptors: the extractor keeps a descriptor of
// at most maxDirFDs directories; entries in the others are created through
// a descriptor opened for them, from the destination down. Files small and
// large, a symlink and a late directory entry changing an implicit
// directory's mode all land where they belong, with the right modes, past
// the limit as before it, under a restrictive umask.
func TestExtractPastDirectoryDescriptors(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	var ents []ent
	want := map[string]string{} // path -> mode on disk
	for i := range maxDirFDs + 50 {
		d := fmt.Sprintf("modules/6.12.0/d%04d", i)
		ents = append(ents, dir(d+"/"), file(d+"/m.ko", d))
		want[d] = "drwxr-xr-x"
		want[d+"/m.ko"] = "-rw-r--r--"
	}
	last := fmt.Sprintf("modules/6.12.0/d%04d", maxDirFDs+49)
	large := strings.Repeat("0123456789abcdef", (smallFile+4096)/16)
	ents = append(ents,
		ent{name: last + "/large.ko", body: large, mode: 0o640},
		symlink(last+"/link", "m.ko"),
		file(last+"/implicit/x.ko", "x"),
		ent{name: last + "/implicit/", typ: tar.TypeDir, mode: 0o700},
		file("vmlinux", "kernel"),
	)
	want[last+"/large.ko"] = "-rw-r-----"
	want[last+"/link"] = "Lrwxrwxrwx"
	want[last+"/implicit"] = "drwx------"
	want[last+"/implicit/x.ko"] = "-rw-r--r--"

	s := newSandbox(t)
	if _, err := s.extract(t, bundle(t, ents...), Limits{}); err != nil {
		t.Fatal(err)
	}
	for p, mode := range want {
		fi, err := os.Lstat(filepath.Join(s.out, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode().String() != mode {
			t.Errorf("%s: mode %s, want %s", p, fi.Mode(), mode)
		}
	}
	for p, body := range map[string]string{last + "/m.ko": last, last + "/large.ko": large, last + "/link": last, last + "/implicit/x.ko": "x"} {
		if b, err := os.ReadFile(filepath.Join(s.out, p)); err != nil || string(b) != body {
			t.Errorf("%s: %.20q..., %v", p, b, err)
		}
	}
}
