package imagebuild

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/thaloco/banger/internal/ext4/ext4test"
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
		t.Run(tt.ref, func(t *testing.T) {
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
		})
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
	if slices.Contains(e.imageNames(t), "corrupt") {
		t.Error("the build from a corrupt layer left an image")
	}
}
