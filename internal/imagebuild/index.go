package imagebuild

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// pickFromIndex chooses the image for platform in idx (descending into
// nested indexes). A single image without a platform is taken as is; its
// config is checked later.
func pickFromIndex(ref string, idx indexReader, platform v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading image index %q: %w", ref, err)
	}
	var seen []string
	var images []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading image index %q: %w", ref, err)
			}
			if img, err := pickFromIndex(ref, child, platform); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			images = append(images, d)
			if d.Platform == nil {
				continue
			}
			if d.Platform.OS == "unknown" { // attestation manifests
				continue
			}
			seen = append(seen, d.Platform.String())
			if platformMatches(*d.Platform, platform) {
				return idx.Image(d.Digest)
			}
		}
	}
	if len(images) == 1 && images[0].Platform == nil {
		return idx.Image(images[0].Digest)
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("image %q holds no images", ref)
	}
	return nil, &PlatformError{Ref: ref, Want: platform.String(), Have: seen, Index: true}
}

// indexReader is the part of v1.ImageIndex pickFromIndex uses.
type indexReader interface {
	IndexManifest() (*v1.IndexManifest, error)
	ImageIndex(v1.Hash) (v1.ImageIndex, error)
	Image(v1.Hash) (v1.Image, error)
}

// subIndex is an index narrowed to some of its manifests.
type subIndex struct {
	indexReader
	descs []v1.Descriptor
}

func selectDescriptors(idx indexReader, descs []v1.Descriptor) indexReader {
	return subIndex{idx, descs}
}

func (s subIndex) IndexManifest() (*v1.IndexManifest, error) {
	return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: s.descs}, nil
}
