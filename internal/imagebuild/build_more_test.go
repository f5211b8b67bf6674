package imagebuild

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/thaloco/banger/internal/ext4/ext4test"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild/imagetest"
)

func TestBuildFromLocalImages(t *testing.T) {
	needRoot(t)
	img := imagetest.Rich()
	dir := t.TempDir()
	ociDir := filepath.Join(dir, "layout")
	p, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "saved.tar")
	tag, _ := name.NewTag("example.com/rich:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	config, _ := img.ConfigName()
	e := newEnv(t, "")
	for _, tt := range []struct{ ref, digest string }{
		{"oci:" + ociDir, digest.String()},
		{"oci:" + ociDir + ":v1", digest.String()},
		{ociDir, digest.String()},
		{"docker-archive:" + archive, config.String()},
		{archive, config.String()},
	} {
		m, err := e.build(context.Background(), tt.ref, "local", func(o *Options) { o.Force = true })
		if err != nil {
			t.Fatalf("%s: %v", tt.ref, err)
		}
		if m.ImageDigest != tt.digest {
			t.Errorf("%s: digest %s, want %s", tt.ref, m.ImageDigest, tt.digest)
		}
		if got := string(ext4test.Cat(t, m.RootfsPath(), "/home/user/notes")); got != "private\n" {
			t.Errorf("%s: notes %q", tt.ref, got)
		}
	}
	if _, err := e.build(context.Background(), "oci:"+ociDir+":v2", "x"); err == nil || !strings.Contains(err.Error(), `no image tagged "v2"`) {
		t.Errorf("unknown layout tag: %v", err)
	}
	// A layout blob whose content is not what its digest says is caught
	// by the digest: the swapped-in layer is valid gzip and a valid tar, so
	// nothing but the digest check can notice.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	victim, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	other, err := imagetest.Layer(imagetest.File("etc/impostor", "not the layer the manifest names\n")).Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	swapped, err := io.ReadAll(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ociDir, "blobs", victim.Algorithm, victim.Hex), swapped, 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(e.cache)
	_, err = e.build(context.Background(), "oci:"+ociDir, "corrupt")
	if err == nil || !strings.Contains(err.Error(), "layer "+victim.String()+" is corrupt: its content hashes to sha256:") {
		t.Errorf("a layout blob with other content: %v, want the layer named corrupt", err)
	}
	if slices.Contains(e.visible(t), "corrupt") {
		t.Error("the build from a corrupt layer left an image")
	}
}

func TestBuildNameClashBeforePulling(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, _ := reg.Push("test/m:v1", imagetest.Marked("linux/amd64"))
	e := newEnv(t, "")
	if _, err := e.build(context.Background(), ref, "taken"); err != nil {
		t.Fatal(err)
	}
	before := reg.BlobGets.Load()
	_, err := e.build(context.Background(), ref, "taken")
	if !errors.Is(err, image.ErrExists) || !errors.As(err, new(*image.ExistsError)) {
		t.Fatalf("second build: %v", err)
	}
	if reg.BlobGets.Load() != before {
		t.Error("a refused build still downloaded blobs")
	}
}

func TestBuildInterrupted(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, _ := reg.Push("test/rich:v1", imagetest.Rich())
	reg.BlobDelay.Store(int64(2 * time.Second))
	e := newEnv(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel while the layers are downloading.
		for reg.BlobGets.Load() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := e.build(ctx, ref, "cut")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted build: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the build took %s to notice the interruption", d)
	}
	if v := e.visible(t); len(v) != 0 {
		t.Errorf("interrupted build left images %v", v)
	}
	if l := e.leftovers(t); len(l) != 0 {
		t.Errorf("interrupted build left %v", l)
	}
	// The next build works.
	reg.BlobDelay.Store(0)
	if _, err := e.build(context.Background(), ref, "cut"); err != nil {
		t.Fatal(err)
	}
}

func TestBuildDiskFull(t *testing.T) {
	needRoot(t)
	// A real full disk: the whole state on a 24 MiB tmpfs, an image with
	// 40 MiB of incompressible data.
	state := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", state).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	defer exec.Command("umount", state).Run()
	big := make([]byte, 40<<20)
	for i := range big {
		big[i] = byte(i*2654435761>>13 + i>>7)
	}
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, err := reg.Push("test/big:v1", imagetest.Image("linux/amd64", imagetest.Layer(imagetest.File("big", string(big)))))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, state)
	_, err = e.build(context.Background(), ref, "big")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "hint: free some space") {
		t.Fatalf("build onto a full disk: %v", err)
	}
	t.Log(err)
	if v := e.visible(t); len(v) != 0 {
		t.Errorf("failed build left images %v", v)
	}
	if l := e.leftovers(t); len(l) != 0 {
		t.Errorf("failed build left %v", l)
	}
}
