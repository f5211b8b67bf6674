package node

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild"
	"github.com/thaloco/banger/internal/imagebuild/imagetest"
	"github.com/thaloco/banger/internal/sshkey"
)

// TestImageBuilder: ten pods asking for one container image at once get
// one banger image, built once; asking again builds nothing.
func TestImageBuilder(t *testing.T) {
	reg := imagetest.NewRegistry()
	defer reg.Close()
	img := imagetest.Image("linux/amd64", imagetest.Layer(
		imagetest.Dir("etc"), imagetest.File("etc/os-release", "ID=testos\n"),
		imagetest.Dir("bin"), imagetest.WithMode(imagetest.File("bin/sh", "not really a shell\n"), 0o755),
	))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Entrypoint, cf.Config.Env, cf.Config.WorkingDir = []string{"/bin/sh"}, []string{"A=1"}, "/etc"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := reg.Push("test/tiny:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	wantConfig := image.Config{Entrypoint: []string{"/bin/sh"}, Env: []string{"A=1"}, WorkingDir: "/etc"}
	kp, err := sshkey.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := image.New(t.TempDir())
	b := &ImageBuilder{Store: store, Options: imagebuild.Options{CacheDir: t.TempDir(), AuthorizedKey: kp.Public}}
	var wg sync.WaitGroup
	got := make([]Image, 10)
	errs := make([]error, 10)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = b.Source(context.Background(), ref) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i].Image != imageName(ref) || !reflect.DeepEqual(got[i].Config, wantConfig) {
			t.Fatalf("Source %d: %q with config %+v, %v; want %q with %+v", i, got[i].Image, got[i].Config, errs[i], imageName(ref), wantConfig)
		}
	}
	m, err := store.Get(imageName(ref))
	if err != nil {
		t.Fatal(err)
	}
	if m.ImageRef != ref {
		t.Errorf("image built from %q, want %q", m.ImageRef, ref)
	}
	gets := reg.BlobGets.Load()
	if o, err := b.Source(context.Background(), ref); err != nil || o.Image != imageName(ref) || !reflect.DeepEqual(o.Config, wantConfig) {
		t.Errorf("Source again: %q with config %+v, %v", o.Image, o.Config, err)
	}
	if n := reg.BlobGets.Load(); n != gets {
		t.Errorf("Source of a built image fetched %d blobs", n-gets)
	}
}
