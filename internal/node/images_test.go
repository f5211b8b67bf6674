package node

import (
	"context"
	"sync"
	"testing"

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
	ref, err := reg.Push("test/tiny:v1", imagetest.Image("linux/amd64", imagetest.Layer(
		imagetest.Dir("etc"), imagetest.File("etc/os-release", "ID=testos\n"),
		imagetest.Dir("bin"), imagetest.WithMode(imagetest.File("bin/sh", "not really a shell\n"), 0o755),
	)))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := sshkey.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := image.New(t.TempDir())
	b := &ImageBuilder{Store: store, Options: imagebuild.Options{CacheDir: t.TempDir(), AuthorizedKey: kp.Public}}
	var wg sync.WaitGroup
	names := make([]string, 10)
	errs := make([]error, 10)
	for i := range names {
		wg.Go(func() {
			o, err := b.Source(context.Background(), ref)
			names[i], errs[i] = o.Image, err
		})
	}
	wg.Wait()
	for i := range names {
		if errs[i] != nil || names[i] != imageName(ref) {
			t.Fatalf("Source %d: %q, %v; want %q", i, names[i], errs[i], imageName(ref))
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
	if o, err := b.Source(context.Background(), ref); err != nil || o.Image != imageName(ref) {
		t.Errorf("Source again: %q, %v", o.Image, err)
	}
	if n := reg.BlobGets.Load(); n != gets {
		t.Errorf("Source of a built image fetched %d blobs", n-gets)
	}
}
