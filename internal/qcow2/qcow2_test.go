package qcow2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mkext4 writes a real ext4 filesystem of size bytes holding a marker.
func mkext4(t *testing.T, path string, size int64) {
	t.Helper()
	tree := t.TempDir()
	if err := os.WriteFile(filepath.Join(tree, "marker"), []byte("base"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", tree, path, strconv.FormatInt(size>>10, 10)+"k")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// qemuInfo is what qemu-img info says of path.
func qemuInfo(t *testing.T, path string) (info struct {
	Format        string `json:"format"`
	VirtualSize   int64  `json:"virtual-size"`
	BackingFile   string `json:"backing-filename"`
	BackingFormat string `json:"backing-filename-format"`
}) {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-U", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// fsSize is the size of the ext4 filesystem in the raw file path.
func fsSize(t *testing.T, path string) int64 {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", path).Output()
	if err != nil {
		t.Fatalf("dumpe2fs %s: %v", path, err)
	}
	var count, bs int64
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "Block count":
			count, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		case "Block size":
			bs, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return count * bs
}

// qemuImgCreate is what Create stands in for.
func qemuImgCreate(t *testing.T, path, backing string, size int64) {
	t.Helper()
	args := []string{"create", "-q", "-f", "qcow2", "-F", "raw", "-b", backing, path}
	if size > 0 {
		args = append(args, strconv.FormatInt(size, 10))
	}
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
}

// region reads n bytes of path at off.
func region(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("reading %s at %d: %v", path, off, err)
	}
	return b
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestCreate checks Create's overlays against qemu-img's: the same header
// fields, refcount structures and L1 table, the same file size; qemu-img
// finds them sound, reads the backing file's bytes through them, and
// writes into them.
func TestCreate(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.ext4")
	mkext4(t, base, 32<<20)
	sum := sha(t, base)
	odd := filepath.Join(dir, "odd.raw")
	if err := os.WriteFile(odd, []byte("not a multiple of 512"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		backing  string
		size     int64
		wantSize int64
	}{
		{"backing size", base, 0, 32 << 20},
		{"bigger", base, 96 << 20, 96 << 20},
		{"several L1 entries", base, 5<<30 + 4096, 5<<30 + 4096},
		{"odd size", base, 100<<20 + 1, 100<<20 + 512},
		{"odd backing", odd, 0, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			ours, theirs := filepath.Join(d, "ours.qcow2"), filepath.Join(d, "theirs.qcow2")
			if err := Create(ours, tc.backing, tc.size); err != nil {
				t.Fatal(err)
			}
			qemuImgCreate(t, theirs, tc.backing, tc.wantSize)
			h, err := ReadHeader(ours)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != 3 || h.Size != tc.wantSize || h.BackingFile != tc.backing || h.BackingFormat != "raw" || h.ClusterBits != 16 {
				t.Fatalf("header %+v", h)
			}
			info := qemuInfo(t, ours)
			if info.Format != "qcow2" || info.VirtualSize != h.Size || info.BackingFile != h.BackingFile || info.BackingFormat != h.BackingFormat {
				t.Fatalf("qemu-img info %+v disagrees with the header %+v", info, h)
			}
			// The header up to the extensions, less the backing name's
			// offset (qemu-img adds a feature-name table before it).
			a, b := region(t, ours, 0, headerLength), region(t, theirs, 0, headerLength)
			copy(a[8:16], make([]byte, 8))
			copy(b[8:16], make([]byte, 8))
			if !bytes.Equal(a, b) {
				t.Fatalf("header differs from qemu-img's:\n%x\n%x", a, b)
			}
			so, _ := os.Stat(ours)
			st, _ := os.Stat(theirs)
			if so.Size() != st.Size() || so.Mode().Perm() != 0o600 {
				t.Fatalf("overlay is %d bytes, %v; qemu-img's %d bytes; want the same size, 0600", so.Size(), so.Mode(), st.Size())
			}
			if !bytes.Equal(region(t, ours, clusterSize, so.Size()-clusterSize), region(t, theirs, clusterSize, st.Size()-clusterSize)) {
				t.Fatal("refcount table, refcount block or L1 table differ from qemu-img's")
			}
			qemuImg(t, "check", "-q", ours)
			if tc.backing == base && tc.size == 0 {
				qemuImg(t, "compare", "-q", "-f", "qcow2", "-F", "raw", ours, base)
			}
			// A write lands in the overlay, never in the backing file.
			qemuImg(t, "dd", "-f", "raw", "-O", "qcow2", "bs=4096", "count=1", "if=/dev/urandom", "of="+ours)
			qemuImg(t, "check", "-q", ours)
			if sha(t, base) != sum {
				t.Fatal("writing the overlay changed its backing file")
			}
		})
	}
	for _, tc := range []struct{ name, path, backing, want string }{
		{"relative backing", filepath.Join(dir, "rel.qcow2"), "base.ext4", "not an absolute path"},
		{"missing backing", filepath.Join(dir, "missing.qcow2"), filepath.Join(dir, "nope"), "no such file"},
		{"backing is a directory", filepath.Join(dir, "dir.qcow2"), dir, "not a regular file"},
		{"existing file", base, base, "file exists"},
		{"long backing name", filepath.Join(dir, "long.qcow2"), "/" + strings.Repeat("x", 1100), "longer than qcow2 allows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Create(tc.path, tc.backing, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create = %v, want %q", err, tc.want)
			}
			if tc.path != base {
				if _, err := os.Lstat(tc.path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a failed Create left %s", tc.path)
				}
			}
		})
	}
	if sha(t, base) != sum {
		t.Fatal("Create onto the backing file changed it")
	}
}

func TestParseHeader(t *testing.T) {
	good := func(version uint32, backing string, ext []byte) []byte {
		b := make([]byte, 4096)
		copy(b, magic)
		be := binary.BigEndian
		be.PutUint32(b[4:], version)
		be.PutUint32(b[20:], 16)
		be.PutUint64(b[24:], 1<<30)
		hl := uint32(72)
		if version == 3 {
			hl = 104
			be.PutUint32(b[100:], hl)
		}
		copy(b[hl:], ext)
		off := uint64(1024)
		if backing != "" {
			be.PutUint64(b[8:], off)
			be.PutUint32(b[16:], uint32(len(backing)))
			copy(b[off:], backing)
		}
		return b
	}
	fmtExt := func(name string) []byte {
		e := make([]byte, 8+(len(name)+7)&^7+8)
		binary.BigEndian.PutUint32(e, extBackingFormat)
		binary.BigEndian.PutUint32(e[4:], uint32(len(name)))
		copy(e[8:], name)
		return e
	}
	for _, tc := range []struct {
		name    string
		buf     []byte
		want    Header
		wantErr string
	}{
		{"v3 with backing", good(3, "/img/rootfs.ext4", fmtExt("raw")), Header{Version: 3, Size: 1 << 30, ClusterBits: 16, BackingFile: "/img/rootfs.ext4", BackingFormat: "raw"}, ""},
		{"v2 without backing", good(2, "", nil), Header{Version: 2, Size: 1 << 30, ClusterBits: 16}, ""},
		{"raw file", make([]byte, 4096), Header{}, "not a qcow2 file"},
		{"truncated", good(3, "", nil)[:50], Header{}, "not a qcow2 file"},
		{"version 4", good(4, "", nil), Header{}, "unknown version 4"},
		{"backing name outside", func() []byte { b := good(3, "/x", nil); binary.BigEndian.PutUint64(b[8:], 4095); return b }(), Header{}, "out of the header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHeader(tc.buf)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrNotQcow2) {
					t.Fatalf("parseHeader = %+v, %v; want %q", h, err, tc.wantErr)
				}
				return
			}
			if err != nil || *h != tc.want {
				t.Fatalf("parseHeader = %+v, %v; want %+v", h, err, tc.want)
			}
		})
	}
}

// TestExportGrow grows the filesystem of an overlay through the FUSE
// export, as "vm create --disk-size" does: the overlay's guest view holds
// a grown, clean filesystem, and the backing file is untouched.
func TestExportGrow(t *testing.T) {
	if err := CheckExport(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.ext4")
	mkext4(t, base, 32<<20)
	sum := sha(t, base)
	ov := filepath.Join(dir, "disk.qcow2")
	if err := Create(ov, base, 128<<20); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "grow.raw")
	e, err := ExportRaw(ctx, ov, mnt)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(mnt); err != nil || st.Size() != 128<<20 {
		t.Fatalf("export: %v, %v; want a 128 MiB file", st, err)
	}
	// Only its user reaches the export.
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[1] == mnt && (f[2] != "fuse" || strings.Contains(f[3], "allow_other")) {
			t.Errorf("export mounted as %q", l)
		}
	}
	if out, err := exec.Command("resize2fs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("resize2fs: %v: %s", err, out)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(mnt); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the mount point is still there: %v", err)
	}
	if mounts, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(mounts), mnt) {
		t.Fatalf("the export is still mounted")
	}
	if got := sha(t, base); got != sum {
		t.Fatal("growing the overlay changed its backing file")
	}
	raw := filepath.Join(dir, "view.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", ov, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	if got := fsSize(t, raw); got != 128<<20 {
		t.Fatalf("the overlay's filesystem is %d bytes, want 128 MiB", got)
	}
	if out, err := exec.Command("e2fsck", "-fn", raw).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck of the grown filesystem: %v: %s", err, out)
	}
	if fsSize(t, base) != 32<<20 {
		t.Fatal("the backing file's filesystem changed size")
	}
}

func TestExportFails(t *testing.T) {
	dir := t.TempDir()
	notQcow2 := filepath.Join(dir, "plain.raw")
	if err := os.WriteFile(notQcow2, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "grow.raw")
	_, err := ExportRaw(context.Background(), notQcow2, mnt)
	if !errors.As(err, new(*ExportError)) || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "qcow2") {
		t.Fatalf("exporting a raw file as qcow2: %v", err)
	}
	if _, err := os.Lstat(mnt); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed export left its mount point: %v", err)
	}
	// A mount point that exists is refused: it may be another export's.
	if err := os.WriteFile(mnt, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ExportRaw(context.Background(), notQcow2, mnt); !errors.Is(err, os.ErrExist) {
		t.Fatalf("export onto an existing file: %v", err)
	}
}
