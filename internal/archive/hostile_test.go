package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var vm = file("vmlinux", "kernel")

// hostileCases are bundles breaking one rule each, with the entry the error
// must name and the text it must contain. FuzzExtractBundle starts from them.
var hostileCases = []struct {
	name      string
	ents      []ent
	wantEntry string
	wantText  string
}{
	{"absolute name", []ent{vm, file("/etc/passwd", "x")}, "/etc/passwd", "absolute path"},
	{"dotdot escaping", []ent{vm, file("modules/../../outside/etc/passwd", "x")}, "modules/../../outside/etc/passwd", `".." component`},
	{"dotdot staying inside", []ent{vm, file("modules/a/../b", "x")}, "modules/a/../b", `".." component`},
	{"non-canonical name", []ent{vm, file("modules//a.ko", "x")}, "modules//a.ko", "non-canonical"},
	{"outside the roots", []ent{vm, file("README", "x")}, "README", "outside the bundle layout"},
	{"outside the roots, nested", []ent{vm, file("boot/config", "x")}, "boot/config", "outside the bundle layout"},
	{"top-level versioned directory", []ent{dir("linux-6.12/"), file("linux-6.12/vmlinux", "k")}, "linux-6.12/", "contents must be at the archive root"},
	{"top-level versioned file", []ent{file("linux-6.12/vmlinux", "k")}, "linux-6.12/vmlinux", `top-level directory "linux-6.12"`},
	{"missing vmlinux", []ent{file("initrd.img", "i"), dir("modules/")}, "vmlinux", "missing"},
	{"empty archive", nil, "vmlinux", "missing"},
	{"vmlinux a directory", []ent{dir("vmlinux/")}, "vmlinux/", "vmlinux must be a regular file, not a directory"},
	{"vmlinux with children", []ent{file("vmlinux/x", "k")}, "vmlinux/x", "vmlinux must be a regular file at the archive root"},
	{"vmlinux a symlink", []ent{symlink("vmlinux", "modules/k")}, "vmlinux", "vmlinux must be a regular file, not a symlink"},
	{"initrd a symlink", []ent{vm, symlink("initrd.img", "vmlinux")}, "initrd.img", "initrd.img must be a regular file, not a symlink"},
	{"modules a file", []ent{vm, file("modules", "x")}, "modules", "modules must be a directory, not a regular file"},
	{"modules a symlink", []ent{vm, symlink("modules", ".")}, "modules", "modules must be a directory, not a symlink"},
	{"absolute symlink", []ent{vm, symlink("modules/build", "/usr/src/linux")}, "modules/build", `absolute symlink target "/usr/src/linux"`},
	{"symlink leaving the archive", []ent{vm, symlink("modules/x", "../../outside/etc")}, "modules/x", "leaves the archive"},
	{"symlink leaving from deep", []ent{vm, dir("modules/a/b/"), symlink("modules/a/b/l", "../../../../x")}, "modules/a/b/l", "leaves the archive"},
	{"symlink chain leaving", []ent{vm, symlink("modules/up", ".."), symlink("modules/x", "up/../outside")}, "modules/x", "leaves the archive"},
	{"symlink chain via a later link", []ent{vm, symlink("modules/x", "up/../outside"), symlink("modules/up", "..")}, "modules/x", "leaves the archive"},
	{"symlink loop", []ent{vm, symlink("modules/a", "b"), symlink("modules/b", "a")}, "modules/b", "too many levels of symlinks"},
	{"symlink to itself", []ent{vm, symlink("modules/a", "../modules/a")}, "modules/a", "too many levels of symlinks"},
	{"empty symlink target", []ent{vm, symlink("modules/e", "")}, "modules/e", "empty target"},
	{"hardlink", []ent{vm, {name: "modules/k", typ: tar.TypeLink, link: "vmlinux"}}, "modules/k", "hardlinks are not allowed"},
	{"char device", []ent{vm, {name: "modules/null", typ: tar.TypeChar}}, "modules/null", "device node"},
	{"block device", []ent{vm, {name: "modules/sda", typ: tar.TypeBlock}}, "modules/sda", "device node"},
	{"fifo", []ent{vm, {name: "modules/fifo", typ: tar.TypeFifo}}, "modules/fifo", "fifo entries are not allowed"},
	{"unknown type", []ent{vm, {name: "modules/c", typ: tar.TypeCont}}, "modules/c", "unsupported entry type"},
	{"write through a symlink", []ent{vm, dir("modules/real/"), symlink("modules/l", "real"), file("modules/l/x.ko", "x")}, "modules/l/x.ko", `parent "modules/l" is a symlink`},
	{"write through an escaping-looking symlink", []ent{vm, symlink("modules/l", "."), file("modules/l/vmlinux", "x")}, "modules/l/vmlinux", `parent "modules/l" is a symlink`},
	{"parent is a file", []ent{vm, file("modules/f", "x"), file("modules/f/x.ko", "x")}, "modules/f/x.ko", `parent "modules/f" is not a directory`},
	{"duplicate vmlinux", []ent{vm, file("vmlinux", "evil")}, "vmlinux", "duplicate entry"},
	{"duplicate via ./", []ent{vm, file("./vmlinux", "evil")}, "./vmlinux", "duplicate entry"},
	{"file replaces a directory", []ent{vm, dir("modules/d/"), file("modules/d", "x")}, "modules/d", "replace an earlier directory"},
	{"symlink replaces a file", []ent{vm, file("modules/a.ko", "x"), symlink("modules/a.ko", "b.ko")}, "modules/a.ko", "replace an earlier file"},
	{"file replaces a symlink", []ent{vm, symlink("modules/a.ko", "b.ko"), file("modules/a.ko", "x")}, "modules/a.ko", "replace an earlier symlink"},
	{"duplicate directory", []ent{vm, dir("modules/"), dir("modules/")}, "modules/", "duplicate entry"},
}

// TestHostileEntries has one case per rule of the bundle trust model. Each
// must fail with an *UnsafeEntryError naming the entry and saying why, and
// write nothing outside the extraction directory (which the caller removes).
func TestHostileEntries(t *testing.T) {
	for _, tt := range hostileCases {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			files, err := s.extract(t, bundle(t, tt.ents...), Limits{})
			var ue *UnsafeEntryError
			if !errors.As(err, &ue) {
				t.Fatalf("ExtractBundle = %v, %v; want an *UnsafeEntryError", files, err)
			}
			if ue.Name != tt.wantEntry {
				t.Errorf("error names entry %q, want %q (error: %v)", ue.Name, tt.wantEntry, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `unsafe bundle entry "`+tt.wantEntry+`": `) || !strings.Contains(msg, tt.wantText) {
				t.Errorf("error = %q, want it to name %q and say %q", msg, tt.wantEntry, tt.wantText)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			// The caller's cleanup: RemoveAll must leave nothing behind, and
			// must not follow any symlink out of the directory.
			if err := os.RemoveAll(s.out); err != nil {
				t.Fatalf("removing the extraction directory: %v", err)
			}
			s.checkOutside(t)
		})
	}
}

// TestSparseRejected: a sparse entry could expand a few bytes of tar into
// terabytes of zeros past the MaxBytes cap, so both GNU tar sparse formats
// are refused. The archives come from the real GNU tar.
func TestSparseRejected(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "vmlinux"), []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(src, "modules", "holes"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("end"), 1<<30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, format := range []string{"gnu", "pax"} {
		t.Run(format, func(t *testing.T) {
			cmd := exec.Command("tar", "-C", src, "--sparse", "--format="+format, "-cf", "-", "vmlinux", "modules/holes")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tar: %v: %s", err, stderr.Bytes())
			}
			if len(out) > 1<<20 {
				t.Fatalf("tar wrote %d bytes; the file was not stored sparse", len(out))
			}
			s := newSandbox(t)
			_, err = s.extract(t, compress(t, out), Limits{})
			var ue *UnsafeEntryError
			if !errors.As(err, &ue) || ue.Name != "modules/holes" || !strings.Contains(err.Error(), "sparse files are not supported") {
				t.Fatalf("ExtractBundle error = %v, want a sparse-file error naming modules/holes", err)
			}
		})
	}
}
