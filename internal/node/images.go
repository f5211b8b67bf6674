package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/sync/singleflight"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild"
	"github.com/thaloco/banger/internal/vm"
)

// ImageBuilder makes banger images of container images with imagebuild,
// each reference once: the image is named after the reference, so a
// second pod of it finds it built, and pods asking at the same time share
// one build (imagebuild also caches the unpacked tree by digest).
type ImageBuilder struct {
	Store   *image.Store
	Options imagebuild.Options // Ref and Name are set per build

	group singleflight.Group
}

// imageName is the banger image of container image ref.
func imageName(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "k8s-" + hex.EncodeToString(sum[:])[:16]
}

// Source is a Source: VMs of ref are created from its banger image,
// built if needed, and run as its manifest records.
func (b *ImageBuilder) Source(ctx context.Context, ref string) (Image, error) {
	name := imageName(ref)
	if m, err := b.Store.Get(name); err == nil {
		return builtImage(m), nil
	} else if !errors.Is(err, image.ErrNotFound) {
		return Image{}, err
	}
	m, err, _ := b.group.Do(name, func() (any, error) {
		o := b.Options
		o.Ref, o.Name = ref, name
		// Other pods may wait on this build: one pod going away does not
		// cancel it.
		return imagebuild.Build(context.WithoutCancel(ctx), b.Store, o)
	})
	if err != nil {
		return Image{}, fmt.Errorf("building a banger image of %s: %w", ref, err)
	}
	return builtImage(m.(*image.Manifest)), nil
}

// builtImage is the Image of banger image m.
func builtImage(m *image.Manifest) Image {
	img := Image{CreateOptions: vm.CreateOptions{Image: m.Name}}
	if m.Config != nil {
		img.Config = *m.Config
	}
	return img
}
