package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	it "github.com/thaloco/banger/internal/imagebuild/imagetest"
)

// applyLayers applies each layer (a list of entries) to a fresh tree and
// returns its path.
func applyLayers(t *testing.T, layers ...[]it.Entry) (string, error) {
	t.Helper()
	dir, _, err := applyLayersAs(t, false, layers...)
	return dir, err
}

// applyLayersAs is applyLayers, rootless or not, also returning the
// fixups.
func applyLayersAs(t *testing.T, rootless bool, layers ...[]it.Entry) (string, fixups, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := newApplier(dir, rootless, func(w string) { t.Logf("warning: %s", w) })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, l := range layers {
		if err := a.Apply(context.Background(), bytes.NewReader(it.Tar(l...))); err != nil {
			return dir, a.fix, err
		}
	}
	return dir, a.fix, nil
}

// tree describes dir as sorted "path type[ target|content]" lines.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case fi.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+" = "+string(b))
		}
		return nil
	})
	return out
}

func TestApplyStacksLayers(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name   string
		layers [][]it.Entry
		want   []string
	}{
		{"file replaces dir",
			[][]it.Entry{{it.Dir("a"), it.File("a/x", "1")}, {it.File("a", "file")}},
			[]string{"a = file"}},
		{"dir replaces file",
			[][]it.Entry{{it.File("a", "file")}, {it.Dir("a"), it.File("a/x", "1")}},
			[]string{"a/", "a/x = 1"}},
		{"symlink replaces dir",
			[][]it.Entry{{it.Dir("a"), it.File("a/x", "1")}, {it.Symlink("a", "b")}},
			[]string{"a -> b"}},
		{"dir over a symlink replaces it",
			[][]it.Entry{{it.Dir("real"), it.Symlink("a", "real")}, {it.Dir("a"), it.File("a/x", "1")}},
			[]string{"a/", "a/x = 1", "real/"}},
		{"file written through an in-image symlink",
			[][]it.Entry{{it.Dir("usr"), it.Dir("usr/lib"), it.Symlink("lib", "usr/lib")}, {it.File("lib/x", "1")}},
			[]string{"lib -> usr/lib", "usr/", "usr/lib/", "usr/lib/x = 1"}},
		{"dir merges with dir",
			[][]it.Entry{{it.Dir("a"), it.File("a/x", "1")}, {it.Dir("a"), it.File("a/y", "2")}},
			[]string{"a/", "a/x = 1", "a/y = 2"}},
		{"whiteout removes a tree",
			[][]it.Entry{{it.Dir("a"), it.Dir("a/b"), it.File("a/b/x", "1"), it.File("k", "k")}, {it.Whiteout("", "a")}},
			[]string{"k = k"}},
		{"whiteout of a missing path creates nothing",
			[][]it.Entry{{it.File("k", "k")}, {it.Whiteout("no/such", "thing")}},
			[]string{"k = k"}},
		{"opaque keeps entries of its own layer, before and after the marker",
			[][]it.Entry{
				{it.Dir("d"), it.File("d/old", "1"), it.Dir("d/sub"), it.File("d/sub/old", "2")},
				{it.Dir("d"), it.File("d/before", "b"), it.Dir("d/sub"), it.Opaque("d"), it.File("d/after", "a")},
			},
			[]string{"d/", "d/after = a", "d/before = b", "d/sub/"}},
		{"absolute and ./ names are image-relative",
			[][]it.Entry{{it.File("/etc/x", "abs"), it.File("./etc/y", "dot"), it.Dir("./")}},
			[]string{"etc/", "etc/x = abs", "etc/y = dot"}},
		{"hardlink to a lower layer",
			[][]it.Entry{{it.File("a", "data")}, {it.Hardlink("b", "a")}},
			[]string{"a = data", "b = data"}},
		{"replacing a file with two links leaves the other name alone",
			[][]it.Entry{{it.File("a", "v1"), it.Hardlink("b", "a")}, {it.File("a", "v2")}},
			[]string{"a = v2", "b = v1"}},
		{"aufs metadata is skipped",
			[][]it.Entry{{it.Dir(".wh..wh.plnk"), it.File(".wh..wh.plnk/123", "x"), it.File("k", "k")}},
			[]string{"k = k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := applyLayers(t, tt.layers...)
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(t, dir); !slices.Equal(got, tt.want) {
				t.Fatalf("tree:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestApplyMetadata(t *testing.T) {
	needRoot(t)
	dir, err := applyLayers(t, []it.Entry{
		it.Owned(it.WithMode(it.Dir("home"), 0o750), 5, 6),
		it.Owned(it.WithMode(it.File("home/suid", "x"), 0o4711), 5, 6),
		{Name: "cap", Body: "x", Xattrs: map[string]string{"user.one": "1"}},
		{Name: "xd", Type: tar.TypeDir, Xattrs: map[string]string{"user.dir": "d"}},
		{Name: "blk", Type: tar.TypeBlock, Mode: 0o660, Major: 7, Minor: 9, UID: 3, GID: 4},
		it.Owned(it.Symlink("ln", "/nowhere"), 7, 8),
	})
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	check := func(p string, mode os.FileMode, uid, gid int) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
		}
		if fi.Mode()&os.ModeSymlink == 0 && !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), mtime)
		}
	}
	check("home", os.ModeDir|0o750, 5, 6)
	check("home/suid", os.ModeSetuid|0o711, 5, 6)
	check("blk", os.ModeDevice|0o660, 3, 4)
	check("ln", os.ModeSymlink|0o777, 7, 8)
	var st unix.Stat_t
	unix.Lstat(filepath.Join(dir, "blk"), &st)
	if unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 9 {
		t.Errorf("blk is %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	for p, want := range map[string]string{"cap": "user.one=1", "xd": "user.dir=d"} {
		k, v, _ := strings.Cut(want, "=")
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(dir, p), k, buf)
		if err != nil || string(buf[:n]) != v {
			t.Errorf("%s: xattr %s = %q, %v; want %q", p, k, buf[:n], err, v)
		}
	}
}

func TestApplyRefuses(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name   string
		layers [][]it.Entry
		want   string
	}{
		{"hardlink to nothing", [][]it.Entry{{it.Hardlink("b", "missing")}}, "the target is not in the image"},
		{"hardlink to a directory", [][]it.Entry{{it.Dir("d"), it.Hardlink("b", "d")}}, "hard link"},
		{"traversal", [][]it.Entry{{it.File("a/../../x", "x")}}, "points outside the image"},
		{"hardlink traversal", [][]it.Entry{{it.Hardlink("x", "../etc/passwd")}}, "points outside the image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := applyLayers(t, tt.layers...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("apply: %v, want %q", err, tt.want)
			}
		})
	}
	// A canceled context stops between entries.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a, _ := newApplier(t.TempDir(), false, nil)
	defer a.Close()
	if err := a.Apply(ctx, bytes.NewReader(it.Tar(it.File("x", "x")))); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled apply: %v", err)
	}
}

// FuzzApply feeds arbitrary tar streams to the applier; whatever it does
// with them, nothing may appear outside its root.
func FuzzApply(f *testing.F) {
	for _, seed := range [][]it.Entry{
		{it.File("a", "x"), it.Hardlink("b", "a"), it.Symlink("c", "/etc"), it.Dir("d")},
		{it.Symlink("evil", "../.."), it.File("evil/x", "x")},
		{it.Dir("d"), it.Opaque("d"), it.Whiteout("d", "x"), it.File("../x", "y")},
	} {
		f.Add(it.Tar(seed...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		top := t.TempDir()
		dir := filepath.Join(top, "root")
		os.Mkdir(dir, 0o755)
		a, err := newApplier(dir, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Apply(context.Background(), bytes.NewReader(data))
		a.Close()
		ents, _ := os.ReadDir(top)
		if len(ents) != 1 || ents[0].Name() != "root" {
			t.Fatalf("the applier wrote outside its root: %v", ents)
		}
	})
}

func TestApplyKeepsZerosAsHoles(t *testing.T) {
	needRoot(t)
	body := strings.Repeat("\x00", 3<<20) + "tail" + strings.Repeat("\x00", 8192) + strings.Repeat("y", 5000)
	dir, err := applyLayers(t, []it.Entry{it.File("sparse", body), it.File("small", "abc"), it.File("empty", "")})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"sparse": body, "small": "abc", "empty": ""} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(dir, "sparse"), &st)
	if st.Blocks*512 > 64<<10 {
		t.Errorf("sparse file allocates %d bytes for 9 KiB of data", st.Blocks*512)
	}
}

func TestApplyTruncatedLayer(t *testing.T) {
	needRoot(t)
	data := it.Tar(it.File("big", strings.Repeat("z", 100000)))
	a, _ := newApplier(t.TempDir(), false, nil)
	defer a.Close()
	err := a.Apply(context.Background(), bytes.NewReader(data[:20000]))
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("truncated layer: %v", err)
	}
}
