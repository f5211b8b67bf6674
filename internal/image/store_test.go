package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/stagedir"
)

// mkext4 writes a real ext4 image of size bytes holding a marker file.
func mkext4(t *testing.T, path string, size int64, marker string) {
	t.Helper()
	tree := t.TempDir()
	if err := os.WriteFile(filepath.Join(tree, "marker"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
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

// kernels is a CheckKernel that knows only the listed kernels.
func kernels(names ...string) func(string) error {
	return func(k string) error {
		if slices.Contains(names, k) {
			return nil
		}
		return fmt.Errorf("kernel %q is not installed (hint: run \"banger kernel pull %s\")", k, k)
	}
}

// entriesButLocks lists every entry of dir but .locks, hidden leftovers
// included.
func entriesButLocks(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != ".locks" {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "root.ext4")
	mkext4(t, src, 64<<20, "one")
	s := New(filepath.Join(t.TempDir(), "images"))
	opts := RegisterOptions{KernelRef: "generic-6.12", CheckKernel: kernels("generic-6.12")}
	m, err := s.Register(ctx, "deb", src, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := sha(t, src)
	if m.Name != "deb" || m.KernelRef != "generic-6.12" || m.Source != SourceRegister || m.RootfsSize != 64<<20 || m.RootfsSHA256 != want || m.RegisteredFrom != src || m.CreatedAt.IsZero() {
		t.Fatalf("manifest %+v", m)
	}
	got, err := s.Get("deb")
	if err != nil {
		t.Fatal(err)
	}
	if got.RootfsSHA256 != want || sha(t, s.RootfsPath("deb")) != want || got.RootfsPath() != s.RootfsPath("deb") {
		t.Fatalf("stored rootfs differs from the source")
	}
	var srcSt, dstSt unix.Stat_t
	unix.Stat(src, &srcSt)
	unix.Stat(s.RootfsPath("deb"), &dstSt)
	if dstSt.Blocks > srcSt.Blocks || dstSt.Blocks*512 >= 64<<20 {
		t.Errorf("copy allocates %d blocks, source %d: holes were written", dstSt.Blocks, srcSt.Blocks)
	}
	if got.DiskUsage() != dstSt.Blocks*512 {
		t.Errorf("DiskUsage %d", got.DiskUsage())
	}

	// A name clash is refused without --force and leaves the image alone.
	src2 := filepath.Join(t.TempDir(), "root2.ext4")
	mkext4(t, src2, 32<<20, "two")
	if _, err := s.Register(ctx, "deb", src2, opts); !errors.As(err, new(*ExistsError)) || !errors.Is(err, ErrExists) {
		t.Fatalf("re-register without force: %v", err)
	}
	if sha(t, s.RootfsPath("deb")) != want {
		t.Fatal("refused register changed the image")
	}
	opts.Force = true
	if _, err := s.Register(ctx, "deb", src2, opts); err != nil {
		t.Fatal(err)
	}
	if sha(t, s.RootfsPath("deb")) != sha(t, src2) {
		t.Fatal("forced register did not replace the image")
	}
	if v := entriesButLocks(t, s.Dir()); !slices.Equal(v, []string{"deb"}) {
		t.Fatalf("images dir holds %v", v)
	}
}

func TestRegisterRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ext4")
	mkext4(t, good, 32<<20, "x")
	notExt4 := filepath.Join(dir, "not.ext4")
	os.WriteFile(notExt4, make([]byte, 1<<20), 0o644)
	tests := []struct {
		name, image, rootfs, kernel, want string
	}{
		{"not ext4", "a", notExt4, "k", "not an ext4 filesystem"},
		{"missing rootfs", "a", filepath.Join(dir, "nope"), "k", "no such file"},
		{"kernel not installed", "a", good, "generic-6.12", `run "banger kernel pull generic-6.12"`},
		{"no kernel", "a", good, "", ErrNoKernel.Error()},
		{"bad name", "../x", good, "k", "invalid image name"},
		{"upper case", "Deb", good, "k", "invalid image name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(filepath.Join(t.TempDir(), "images"))
			_, err := s.Register(ctx, tt.image, tt.rootfs, RegisterOptions{KernelRef: tt.kernel, CheckKernel: kernels("k")})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register: %v, want %q", err, tt.want)
			}
			if v := entriesButLocks(t, s.Dir()); len(v) != 0 {
				t.Fatalf("refused register left %v", v)
			}
		})
	}
}

func TestRegisterCanceledLeavesNothing(t *testing.T) {
	src := filepath.Join(t.TempDir(), "root.ext4")
	mkext4(t, src, 32<<20, "x")
	s := New(filepath.Join(t.TempDir(), "images"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Register(ctx, "deb", src, RegisterOptions{KernelRef: "k"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Register with a canceled context: %v", err)
	}
	if v := entriesButLocks(t, s.Dir()); len(v) != 0 {
		t.Fatalf("canceled register left %v", v)
	}
}

func TestBeginCleansLeftoversAndLocks(t *testing.T) {
	ctx := context.Background()
	s := New(filepath.Join(t.TempDir(), "images"))
	// What a killed build leaves: a hidden temp dir. Another name's temp
	// dir that merely shares the prefix must survive.
	for _, d := range []string{".tmp-deb-0123456789ab", ".old-deb-ba9876543210", ".tmp-deb-x-0123456789ab"} {
		if err := os.MkdirAll(filepath.Join(s.Dir(), d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	txn, err := s.Begin(ctx, "deb", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := entriesButLocks(t, s.Dir())
	if len(v) != 2 || !slices.Contains(v, ".tmp-deb-x-0123456789ab") || !strings.HasPrefix(filepath.Base(txn.Dir()), ".tmp-deb-") {
		t.Fatalf("after Begin the images dir holds %v", v)
	}
	// A second transaction on the name waits for the first.
	waited := false
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := s.Begin(short, "deb", false, func() { waited = true }); err == nil || !waited {
		t.Fatalf("second Begin: %v (waited %v), want a lock wait then timeout", err, waited)
	}
	txn.Abort()
	if _, err := os.Stat(txn.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Abort left the temp dir")
	}
	if _, err := s.Get("deb"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Abort: %v", err)
	}
}

func TestListGetRemove(t *testing.T) {
	ctx := context.Background()
	s := New(filepath.Join(t.TempDir(), "images"))
	if ls, err := s.List(); err != nil || len(ls) != 0 {
		t.Fatalf("List of a missing dir: %v, %v", ls, err)
	}
	src := filepath.Join(t.TempDir(), "root.ext4")
	mkext4(t, src, 16<<20, "x")
	for _, r := range []struct{ name, kernel string }{{"a", "k1"}, {"b", "k2"}, {"c", "k1"}} {
		if _, err := s.Register(ctx, r.name, src, RegisterOptions{KernelRef: r.kernel}); err != nil {
			t.Fatal(err)
		}
	}
	// Broken entries: no manifest, unreadable manifest, no rootfs.
	os.MkdirAll(filepath.Join(s.Dir(), "d-nomanifest"), 0o755)
	os.MkdirAll(filepath.Join(s.Dir(), "e-garbage"), 0o755)
	os.WriteFile(filepath.Join(s.Dir(), "e-garbage", ManifestFile), []byte("{"), 0o644)
	os.Remove(s.RootfsPath("c"))
	ls, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ls {
		got = append(got, l.Name+":"+l.Broken)
	}
	want := []string{"a:", "b:", "c:rootfs.ext4 is missing", "d-nomanifest:manifest.json is missing", "e-garbage:unreadable manifest.json: unexpected end of JSON input"}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q\nwant   %q", got, want)
	}
	users, err := s.KernelUsers("k1")
	if err != nil || !slices.Equal(users, []string{"a"}) {
		t.Fatalf("KernelUsers(k1) = %v, %v (c is broken, so unknown)", users, err)
	}
	if _, err := s.Get("zzz"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "banger image list") {
		t.Fatalf("Get(zzz) = %v", err)
	}
	for _, name := range []string{"a", "c", "d-nomanifest", "e-garbage"} {
		if err := s.Remove(ctx, name, false, nil); err != nil {
			t.Fatalf("Remove(%s): %v", name, err)
		}
	}
	if err := s.Remove(ctx, "a", false, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove(a) = %v", err)
	}
	if v := entriesButLocks(t, s.Dir()); !slices.Equal(v, []string{"b"}) {
		t.Fatalf("after removals the dir holds %v", v)
	}
}

func TestHashFileSparse(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		size    int64
		offsets []int64
	}{
		{"empty", 0, nil},
		{"all hole", 5<<20 + 17, nil},
		{"leading hole", 8 << 20, []int64{7 << 20}},
		{"trailing hole", 8 << 20, []int64{0}},
		{"scattered", 9<<20 + 3, []int64{1 << 20, 3<<20 + 512, 9<<20 - 100}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(tt.size)
			for _, off := range tt.offsets {
				f.WriteAt([]byte("data at "+fmt.Sprint(off)), off)
			}
			f.Close()
			size, sum, err := hashFile(context.Background(), p)
			if err != nil || size != tt.size || sum != sha(t, p) {
				t.Errorf("%s: hashFile = %d %s %v; want %d %s", tt.name, size, sum, err, tt.size, sha(t, p))
			}
		})
	}
}

// TestOverlaysKeepImage: an image whose rootfs disks overlay is neither
// removed nor replaced, force or not; the refusal names them and says
// that --force does not help. Without overlays, force works as before.
func TestOverlaysKeepImage(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "root.ext4")
	mkext4(t, src, 16<<20, "one")
	overlays := []string{"VM web", "snapshot web-ready"}
	var overlaysErr error
	var asked []string
	s := NewWithOptions(filepath.Join(t.TempDir(), "images"), Options{Overlays: func(name string) ([]string, error) {
		asked = append(asked, name)
		return overlays, overlaysErr
	}})
	opts := RegisterOptions{KernelRef: "k"}
	if _, err := s.Register(ctx, "deb", src, opts); err != nil {
		t.Fatalf("registering a new image (nothing to overlay yet): %v", err)
	}
	if len(asked) != 0 {
		t.Fatalf("a new image's overlays were asked for: %v", asked)
	}
	want := sha(t, s.RootfsPath("deb"))
	other := filepath.Join(t.TempDir(), "other.ext4")
	mkext4(t, other, 16<<20, "two")
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"rm", func() error { return s.Remove(ctx, "deb", false, nil) }},
		{"rm --force", func() error { return s.Remove(ctx, "deb", true, nil) }},
		{"register --force", func() error {
			o := opts
			o.Force = true
			_, err := s.Register(ctx, "deb", other, o)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			var inUse *stagedir.InUseError
			if !errors.As(err, &inUse) || !inUse.Backing ||
				err.Error() != `image "deb" is the base of the overlay disks of VM web, snapshot web-ready: removing or replacing it would lose their data` {
				t.Fatalf("err = %v", err)
			}
			if sha(t, s.RootfsPath("deb")) != want {
				t.Fatal("the refused operation changed the image's rootfs")
			}
		})
	}
	// Register without --force still says the name is taken.
	if _, err := s.Register(ctx, "deb", other, opts); !errors.Is(err, ErrExists) {
		t.Fatalf("register without --force: %v", err)
	}
	overlaysErr = errors.New("cannot list VMs")
	if err := s.Remove(ctx, "deb", true, nil); err == nil || !strings.Contains(err.Error(), `image "deb": finding the disks that overlay it: cannot list VMs`) {
		t.Fatalf("rm when overlays cannot be listed: %v", err)
	}
	overlays, overlaysErr = nil, nil
	o := opts
	o.Force = true
	if _, err := s.Register(ctx, "deb", other, o); err != nil {
		t.Fatalf("register --force without overlays: %v", err)
	}
	if err := s.Remove(ctx, "deb", true, nil); err != nil {
		t.Fatalf("rm --force without overlays: %v", err)
	}
}
