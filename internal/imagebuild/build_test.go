package imagebuild

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/thaloco/banger/internal/ext4/ext4test"
	"github.com/thaloco/banger/internal/guestinit"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild/imagetest"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBanGerTestKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxx banger\n"

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("building images keeps file owners and device nodes, which needs root (CI runs as root)")
	}
}

// env is a state directory with an image store and a build cache.
type env struct {
	store *image.Store
	cache string
	log   strings.Builder
}

func newEnv(t *testing.T, state string) *env {
	if state == "" {
		state = t.TempDir()
	}
	return &env{store: image.New(filepath.Join(state, "images")), cache: filepath.Join(state, "cache", "images")}
}

func (e *env) build(ctx context.Context, ref, name string, mod ...func(*Options)) (*image.Manifest, error) {
	opts := Options{Ref: ref, Name: name, KernelRef: "test-6.12", CacheDir: e.cache, AuthorizedKey: testKey, Log: &e.log}
	for _, m := range mod {
		m(&opts)
	}
	return Build(ctx, e.store, opts)
}

// imageNames lists the image names a user would see.
func (e *env) imageNames(t *testing.T) []string {
	t.Helper()
	ls, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

// leftovers lists entries other than locks in the images dir and cache.
func (e *env) leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range []string{e.store.Dir(), e.cache} {
		ents, _ := os.ReadDir(d)
		for _, x := range ents {
			if x.Name() != ".locks" {
				out = append(out, filepath.Join(filepath.Base(d), x.Name()))
			}
		}
	}
	return out
}

func TestBuildRichImage(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	img := imagetest.Rich()
	ref, err := reg.Push("test/rich:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	for _, rootless := range []bool{false, true} {
		e := newEnv(t, "")
		m, err := e.build(context.Background(), ref, "rich", func(o *Options) { o.rootless = rootless })
		if err != nil {
			t.Fatalf("rootless=%v: %v\nlog:\n%s", rootless, err, e.log.String())
		}
		if m.ImageDigest != digest.String() || m.ImageRef != ref || m.Platform != "linux/amd64" || m.Source != image.SourceBuild || m.KernelRef != "test-6.12" || m.OS != "Test OS 1" || len(m.PackageHash) != 64 {
			t.Errorf("manifest %+v", m)
		}
		if len(m.Warnings) == 0 || !strings.Contains(m.Warnings[0], "not Debian or Ubuntu") || !strings.Contains(m.Warnings[0], "an SSH server") {
			t.Errorf("warnings %q, want the non-Debian warning listing what it lacks", m.Warnings)
		}
		checkRich(t, m.RootfsPath(), "rich")
	}
}

// checkRich checks an image built from imagetest.Rich with debugfs.
func checkRich(t *testing.T, fs, hostname string) {
	t.Helper()
	ext4test.Fsck(t, fs)
	type want struct {
		path, typ  string
		mode       uint32
		uid, gid   int
		body, link string
	}
	for _, w := range []want{
		{"/usr/bin/su", "regular", 0o4755, 0, 0, "setuid binary\n", ""},
		{"/usr/bin/wall", "regular", 0o2755, 0, 0, "setgid binary\n", ""},
		{"/usr/bin/tool", "regular", 0o755, 0, 0, "tool v2\n", ""},
		{"/usr/bin/tool-link", "regular", 0o755, 0, 0, "tool v1\n", ""},
		{"/bin/sh", "symlink", 0o777, 0, 0, "", "../usr/bin/tool"},
		{"/etc/alternatives-abs", "symlink", 0o777, 0, 0, "", "/usr/bin/tool"},
		{"/home/user", "directory", 0o700, 1000, 1000, "", ""},
		{"/home/user/notes", "regular", 0o600, 1000, 1000, "private\n", ""},
		{"/tmp", "directory", 0o1777, 0, 0, "", ""},
		{"/var/lib/old", "regular", 0o644, 0, 0, "now a file\n", ""},
		{"/usr/share/doc/readme", "regular", 0o644, 0, 0, "hi\n", ""},
		{"/usr/share", "directory", 0o755, 0, 0, "", ""},
		{"/opaque/new", "regular", 0o644, 0, 0, "new\n", ""},
		{"/dev/null", "character special", 0o666, 0, 0, "", ""},
		{"/dev/fifo", "FIFO", 0o600, 0, 0, "", ""},
		{"/etc/hostname", "regular", 0o644, 0, 0, hostname + "\n", ""},
		{"/root/.ssh", "directory", 0o700, 0, 0, "", ""},
		{"/root/.ssh/authorized_keys", "regular", 0o600, 0, 0, testKey, ""},
		{guestinit.ReseedPath, "regular", 0o755, 0, 0, "", ""},
	} {
		in, ok := ext4test.Stat(t, fs, w.path)
		if !ok {
			t.Errorf("%s missing from the image", w.path)
			continue
		}
		if in.Type != w.typ || in.Mode != w.mode || in.UID != w.uid || in.GID != w.gid || in.LinkTarget != w.link {
			t.Errorf("%s: %s %o %d:%d -> %q; want %s %o %d:%d -> %q", w.path, in.Type, in.Mode, in.UID, in.GID, in.LinkTarget, w.typ, w.mode, w.uid, w.gid, w.link)
		}
		if w.body != "" {
			if got := string(ext4test.Cat(t, fs, w.path)); got != w.body {
				t.Errorf("%s holds %q, want %q", w.path, got, w.body)
			}
		}
	}
	if null, _ := ext4test.Stat(t, fs, "/dev/null"); null.Device != "" && null.Device != "1:3" && null.Device != "01:03" {
		t.Errorf("/dev/null is device %s", null.Device)
	}
	tool, _ := ext4test.Stat(t, fs, "/usr/bin/tool-link")
	if tool.Links != 1 || tool.Xattrs["user.banger"] != `"yes"` {
		t.Errorf("tool-link (the old tool) %+v: want 1 link and the user.banger xattr", tool)
	}
	for _, gone := range []string{"/etc/deleted", "/opaque/a", "/opaque/sub", "/var/lib/old/x"} {
		if _, ok := ext4test.Stat(t, fs, gone); ok {
			t.Errorf("%s should have been removed by a whiteout or replacement", gone)
		}
	}
	if got := ext4test.Ls(t, fs, "/opaque"); !slices.Equal(got, []string{"new"}) {
		t.Errorf("/opaque holds %v, want only new", got)
	}
	if fstab := string(ext4test.Cat(t, fs, "/etc/fstab")); !strings.Contains(fstab, "/dev/vda\t/\text4") {
		t.Errorf("fstab %q", fstab)
	}
}

func TestBuildHardlinkSharesInode(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, err := reg.Push("test/links:v1", imagetest.Image("linux/amd64", imagetest.Layer(
		imagetest.Dir("bin"),
		imagetest.WithMode(imagetest.File("bin/busybox", "multi-call\n"), 0o755),
		imagetest.Hardlink("bin/ls", "bin/busybox"),
		imagetest.Hardlink("bin/cat", "/bin/busybox"),
	)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "")
	m, err := e.build(context.Background(), ref, "links")
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := ext4test.Stat(t, m.RootfsPath(), "/bin/busybox")
	ls, _ := ext4test.Stat(t, m.RootfsPath(), "/bin/ls")
	cat, _ := ext4test.Stat(t, m.RootfsPath(), "/bin/cat")
	if bb.Links != 3 || ls.Ino != bb.Ino || cat.Ino != bb.Ino {
		t.Fatalf("busybox %+v, ls %+v, cat %+v: want one inode with 3 links", bb, ls, cat)
	}
}

func TestBuildSecondTimeFromCache(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, err := reg.Push("test/rich:v1", imagetest.Rich())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "")
	first, err := e.build(context.Background(), ref, "one")
	if err != nil {
		t.Fatal(err)
	}
	blobs := reg.BlobGets.Load()
	start := time.Now()
	second, err := e.build(context.Background(), ref, "two")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cached build took %s", d)
	}
	// Only the config blob is fetched again, no layer.
	if n := reg.BlobGets.Load() - blobs; n > 1 {
		t.Errorf("cached build downloaded %d blobs", n)
	}
	if second.PackageHash != first.PackageHash || !strings.Contains(e.log.String(), "using the cached tree") {
		t.Errorf("second build did not use the cache: %s", e.log.String())
	}
	// Guest setup is per image even from one cached tree.
	if got := string(ext4test.Cat(t, second.RootfsPath(), "/etc/hostname")); got != "two\n" {
		t.Errorf("second image hostname %q", got)
	}
	if got := string(ext4test.Cat(t, first.RootfsPath(), "/etc/hostname")); got != "one\n" {
		t.Errorf("first image hostname %q", got)
	}
}

func TestBuildBadInput(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	arm, _ := reg.Push("test/arm:v1", imagetest.Marked("linux/arm64"))
	multiNoAMD, _ := reg.PushIndex("test/multi:noamd", imagetest.Index(imagetest.Marked("linux/arm64"), imagetest.Marked("linux/s390x")))
	good, _ := reg.Push("test/good:v1", imagetest.Marked("linux/amd64"))
	tests := []struct {
		name, ref, image string
		mod              func(*Options)
		want             string
	}{
		{"unknown repository", reg.Host + "/test/nope:v1", "x", nil, `not found in registry ` + reg.Host},
		{"unknown tag", reg.Host + "/test/good:v2", "x", nil, "not found in registry"},
		{"unreachable registry", "127.0.0.1:1/test/good:v1", "x", nil, "cannot reach registry 127.0.0.1:1"},
		{"invalid reference", "UPPER/Case::x", "x", nil, "invalid image reference"},
		{"other architecture", arm, "x", nil, "is for linux/arm64, not linux/amd64"},
		{"index without our platform", multiNoAMD, "x", nil, "has no linux/amd64 variant (it has linux/arm64, linux/s390x)"},
		{"invalid platform", good, "x", func(o *Options) { o.Platform = "amd64" }, "invalid platform"},
		{"missing oci layout", "oci:/nonexistent/dir", "x", nil, "reading OCI layout /nonexistent/dir"},
		{"missing archive", "docker-archive:/nonexistent.tar", "x", nil, "reading image archive /nonexistent.tar"},
		{"size too small", good, "x", func(o *Options) { o.Size = 1 << 20 }, "is too small"},
		{"kernel not installed", good, "x", func(o *Options) {
			o.CheckKernel = func(k string) error {
				return errors.New(`kernel "` + k + `" is not installed (hint: run "banger kernel pull ` + k + `")`)
			}
		}, `banger kernel pull test-6.12`},
		{"bad name", good, "../x", nil, "invalid image name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "")
			mods := []func(*Options){}
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			_, err := e.build(context.Background(), tt.ref, tt.image, mods...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("build: %v\nwant an error containing %q", err, tt.want)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error spans several lines: %q", err)
			}
			if v := e.imageNames(t); len(v) != 0 {
				t.Errorf("failed build left images %v", v)
			}
		})
	}
}

func TestBuildPicksPlatformFromIndex(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, err := reg.PushIndex("test/multi:v1", imagetest.Index(imagetest.Marked("linux/arm64"), imagetest.Marked("linux/amd64")))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "")
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		name := strings.ReplaceAll(p, "/", "-")
		m, err := e.build(context.Background(), ref, name, func(o *Options) { o.Platform = p })
		if err != nil {
			t.Fatal(err)
		}
		if got := string(ext4test.Cat(t, m.RootfsPath(), "/platform")); got != p+"\n" || m.Platform != p {
			t.Errorf("--platform %s built %q (%s)", p, got, m.Platform)
		}
		reseed, err := elf.NewFile(bytes.NewReader(ext4test.Cat(t, m.RootfsPath(), guestinit.ReseedPath)))
		if want := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}[p]; err != nil || reseed.Machine != want {
			t.Errorf("--platform %s: the reseed program is not for %v (%v)", p, want, err)
		}
	}
}

func TestBuildHostileLayers(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	for _, kind := range imagetest.HostileKinds() {
		t.Run(kind, func(t *testing.T) {
			// The state lives two levels deep so "../../escaped" would land
			// inside the test's own directory, where we look for it.
			top := t.TempDir()
			outside := filepath.Join(top, "outside")
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
			ref, err := reg.Push("test/hostile:"+kind, imagetest.Hostile(kind, outside))
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, filepath.Join(top, "state"))
			_, err = e.build(context.Background(), ref, "evil")
			if err == nil || !strings.Contains(err.Error(), "malformed or hostile") {
				t.Fatalf("build of a %s layer: %v, want a hostile-layer error", kind, err)
			}
			if !strings.Contains(err.Error(), "layer 2/2") {
				t.Errorf("error %q does not say which layer", err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Errorf("outside dir now holds %d entries", len(ents))
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "keep" {
				t.Errorf("outside/secret changed to %q", b)
			}
			filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
				if err == nil && (d.Name() == "escaped" || d.Name() == "pwned" || d.Name() == "stolen") && !strings.HasPrefix(p, filepath.Join(top, "state")+"/") {
					t.Errorf("hostile layer wrote %s", p)
				}
				return nil
			})
			if v := e.leftovers(t); len(v) != 0 {
				t.Errorf("failed build left %v", v)
			}
		})
	}
}

// TestBuildRecordsConfig: the manifest keeps how the OCI image says to
// run it (entrypoint, cmd, env, working directory, user), also when the
// tree comes from the cache; an image that says nothing records nothing.
func TestBuildRecordsConfig(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	base := imagetest.Image("linux/amd64", imagetest.Layer(imagetest.Dir("etc"), imagetest.File("etc/os-release", "ID=testos\n")))
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Entrypoint = []string{"/bin/server", "--listen"}
	cf.Config.Cmd = []string{":8080"}
	cf.Config.Env = []string{"PATH=/usr/bin:/bin", "GREETING=hello"}
	cf.Config.WorkingDir = "/srv"
	cf.Config.User = "1000:1000"
	img, err := mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reg.Push("test/server:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := reg.Push("test/plain:v1", base)
	if err != nil {
		t.Fatal(err)
	}
	want := &image.Config{
		Entrypoint: []string{"/bin/server", "--listen"}, Cmd: []string{":8080"},
		Env: []string{"PATH=/usr/bin:/bin", "GREETING=hello"}, WorkingDir: "/srv", User: "1000:1000",
	}
	e := newEnv(t, "")
	for _, name := range []string{"server", "server-cached"} {
		if _, err := e.build(context.Background(), ref, name); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, e.log.String())
		}
		m, err := e.store.Get(name) // as written to manifest.json
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Config, want) {
			t.Errorf("%s: config %+v, want %+v", name, m.Config, want)
		}
	}
	if !strings.Contains(e.log.String(), "using the cached tree") {
		t.Errorf("the second build did not come from the cache:\n%s", e.log.String())
	}
	m, err := e.build(context.Background(), plain, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if m.Config != nil {
		t.Errorf("an image without a config recorded %+v", m.Config)
	}
}
