package imagebuild

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	it "github.com/thaloco/banger/internal/imagebuild/imagetest"
)

func TestApplyRootlessRecordsFixups(t *testing.T) {
	needRoot(t) // device nodes in the expected tree comparison are absent either way
	dir, fx, err := applyLayersAs(t, true,
		[]it.Entry{
			it.WithMode(it.Dir("ro"), 0o555), it.File("ro/x", "x"),
			it.Dir("home"), it.Owned(it.WithMode(it.Dir("home/u"), 0o700), 1000, 1000),
			it.Owned(it.File("home/u/notes", "n"), 1000, 1001),
			it.WithMode(it.File("su", "s"), 0o4755),
			it.Dir("dev"), {Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3},
			{Name: "dev/sda", Type: tar.TypeBlock, Mode: 0o660, Major: 8, GID: 6},
			{Name: "cap", Body: "c", Xattrs: map[string]string{"security.capability": "\x01\x00", "user.a": "1"}},
			it.Owned(it.Symlink("ln", "x"), 5, 5),
			it.File("gone", "g"), it.Owned(it.File("gone-owned", "g"), 9, 9),
		},
		[]it.Entry{
			it.File("ro/y", "written into a read-only directory of a lower layer"),
			it.Whiteout("", "gone-owned"),
			it.Whiteout("dev", "sda"),
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range fx {
			if !yield(k) {
				return
			}
		}
	}) {
		b, _ := json.Marshal(fx[n])
		got = append(got, n+" "+string(b))
	}
	want := []string{
		`cap {"xattrs":{"security.capability":"\u0001\u0000"}}`,
		`dev/null {"device":true,"major":1,"minor":3,"mode":8630}`,
		`home/u {"uid":1000,"gid":1000}`,
		`home/u/notes {"uid":1000,"gid":1001}`,
		`ln {"uid":5,"gid":5}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("fixups:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if _, err := os.Lstat(filepath.Join(dir, "dev/null")); err == nil {
		t.Error("a rootless build made a device node")
	}
	for p, mode := range map[string]os.FileMode{"ro": os.ModeDir | 0o555, "home/u": os.ModeDir | 0o700, "su": os.ModeSetuid | 0o755} {
		if fi, err := os.Lstat(filepath.Join(dir, p)); err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, %v; want %v", p, fi.Mode(), err, mode)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ro/y")); err != nil || len(b) == 0 {
		t.Errorf("ro/y: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Getxattr(filepath.Join(dir, "cap"), "user.a", buf); err != nil || string(buf[:n]) != "1" {
		t.Errorf("user.a on cap: %q, %v", buf[:n], err)
	}
}

// TestBuildAsUnprivilegedUser runs a whole build as nobody (uid 65534) in
// a child process: owners, setuid bits, device nodes and xattrs must come
// out as in a root build.
func TestBuildAsUnprivilegedUser(t *testing.T) {
	if os.Getenv("BANGER_TEST_BUILD_AS") != "" {
		t.Skip("helper process")
	}
	needRoot(t) // to become nobody
	reg := it.NewRegistry()
	defer reg.Close()
	ref, err := reg.Push("test/rich:v1", it.Rich())
	if err != nil {
		t.Fatal(err)
	}
	// A world-traversable place nobody can write to, holding a copy of
	// this test binary.
	top, err := os.MkdirTemp("", "banger-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	os.Chmod(top, 0o755)
	state := filepath.Join(top, "state")
	os.Mkdir(state, 0o755)
	os.Chown(state, 65534, 65534)
	bin := filepath.Join(top, "imagebuild.test")
	copyFile(t, os.Args[0], bin)

	cmd := exec.Command(bin, "-test.run=^TestHelperBuildAs$", "-test.v")
	cmd.Env = append(os.Environ(), "BANGER_TEST_BUILD_AS="+state, "BANGER_TEST_REF="+ref)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperBuildAs") {
		t.Fatalf("build as nobody: %v\n%s", err, out)
	}
	img := filepath.Join(state, "images", "rich", "rootfs.ext4")
	checkRich(t, img, "rich")
	// The build ran as nobody: the cached tree is nobody's.
	trees, _ := filepath.Glob(filepath.Join(state, "cache", "images", "*-rootless", "rootfs", "usr", "bin", "su"))
	if len(trees) != 1 {
		t.Fatalf("no rootless cache tree: %v", trees)
	}
	var st syscall.Stat_t
	syscall.Stat(trees[0], &st)
	if st.Uid != 65534 {
		t.Errorf("cached su belongs to %d, want nobody", st.Uid)
	}
}

// TestHelperBuildAs is the child of TestBuildAsUnprivilegedUser.
func TestHelperBuildAs(t *testing.T) {
	state := os.Getenv("BANGER_TEST_BUILD_AS")
	if state == "" {
		t.Skip("only runs as TestBuildAsUnprivilegedUser's child")
	}
	if os.Geteuid() == 0 {
		t.Fatal("the helper must not run as root")
	}
	e := newEnv(t, state)
	if _, err := e.build(context.Background(), os.Getenv("BANGER_TEST_REF"), "rich"); err != nil {
		t.Fatalf("%v\n%s", err, e.log.String())
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
