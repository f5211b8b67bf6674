package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/thaloco/banger/internal/image"
)

// Reference prefixes for local images.
const (
	prefixOCI    = "oci:"            // an OCI image layout directory
	prefixDocker = "docker-archive:" // a `docker save` / `podman save` tarball
)

// source is a resolved image: where it came from and its layers, base
// first.
type source struct {
	Ref      string // the reference as given
	Kind     string // "registry", "oci" or "docker-archive"
	Digest   string // manifest digest; the config digest (image ID) for archives
	Platform string // os/arch[/variant] of the chosen image
	Image    v1.Image
	// Uncompressed: read layers with Uncompressed() (archives store them
	// so); otherwise Compressed() and banger decompresses.
	Uncompressed bool
	Total        int64 // bytes the layers' streams will deliver, 0 if unknown
	// Config is how the image says to run it (from its config file).
	Config image.Config
}

// openSource resolves ref for platform: a registry reference (plain HTTP
// for localhost and 127.0.0.1), "oci:DIR[:TAG]", "docker-archive:FILE",
// or a path to either.
func openSource(ctx context.Context, ref string, platform v1.Platform, rt http.RoundTripper) (*source, error) {
	switch {
	case strings.HasPrefix(ref, prefixOCI):
		return openLayout(ref, strings.TrimPrefix(ref, prefixOCI), platform)
	case strings.HasPrefix(ref, prefixDocker):
		return openArchive(ref, strings.TrimPrefix(ref, prefixDocker), platform)
	}
	if fi, err := os.Stat(ref); err == nil && (strings.ContainsRune(ref, os.PathSeparator) || strings.HasPrefix(ref, ".")) {
		if fi.IsDir() {
			return openLayout(ref, ref, platform)
		}
		return openArchive(ref, ref, platform)
	}
	return openRemote(ctx, ref, platform, rt)
}

func openRemote(ctx context.Context, ref string, platform v1.Platform, rt http.RoundTripper) (*source, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w (hint: use a registry reference such as docker.io/library/debian:bookworm, or oci:DIR or docker-archive:FILE)", ref, err)
	}
	if isLoopback(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
		}
	}
	if rt == nil {
		rt = remote.DefaultTransport
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, remoteError(ctx, ref, r, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("reading image index %q: %w", ref, err)
		}
		img, err = pickFromIndex(ref, idx, platform)
		if err != nil {
			return nil, err
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, fmt.Errorf("reading image %q: %w", ref, err)
	}
	return finish(&source{Ref: ref, Kind: "registry", Image: img}, platform)
}

// remoteError turns a registry failure into one line naming the cause.
func remoteError(ctx context.Context, ref string, r name.Reference, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("image %q not found in registry %s (hint: check the repository name and tag)", ref, r.Context().RegistryStr())
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s refused access to %q (hint: log in with \"docker login\" or check the name)", r.Context().RegistryStr(), ref)
		}
	}
	var nerr net.Error
	var operr *net.OpError
	if errors.As(err, &operr) || errors.As(err, &nerr) {
		return fmt.Errorf("cannot reach registry %s for %q: %w (hint: check the reference and that the registry is up)", r.Context().RegistryStr(), ref, err)
	}
	return fmt.Errorf("pulling %q: %w", ref, err)
}

func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func openLayout(ref, spec string, platform v1.Platform) (*source, error) {
	dir, tag := spec, ""
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		if i := strings.LastIndex(spec, ":"); i > 0 && !strings.Contains(spec[i:], "/") {
			dir, tag = spec[:i], spec[i+1:]
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w (hint: pass a directory holding oci-layout and index.json, e.g. from \"skopeo copy ... oci:DIR\")", dir, err)
	}
	var idx indexReader
	idx, err = p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	if tag != "" {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
		}
		var found []v1.Descriptor
		for _, d := range im.Manifests {
			if d.Annotations["org.opencontainers.image.ref.name"] == tag {
				found = append(found, d)
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("OCI layout %s has no image tagged %q", dir, tag)
		}
		idx = selectDescriptors(idx, found)
	}
	img, err := pickFromIndex(ref, idx, platform)
	if err != nil {
		return nil, err
	}
	return finish(&source{Ref: ref, Kind: "oci", Image: img}, platform)
}

func openArchive(ref, file string, platform v1.Platform) (*source, error) {
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return nil, fmt.Errorf("reading image archive %s: %w (hint: pass a tarball from \"docker save\" or \"podman save --format docker-archive\")", file, err)
	}
	s := &source{Ref: ref, Kind: "docker-archive", Image: img, Uncompressed: true}
	if fi, err := os.Stat(file); err == nil {
		s.Total = fi.Size()
	}
	return finish(s, platform)
}

// finish checks the chosen image's platform and fills in its digest and
// layer sizes.
func finish(s *source, want v1.Platform) (*source, error) {
	cf, err := s.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of %q: %w", s.Ref, err)
	}
	have := cf.Platform()
	if have == nil {
		have = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	}
	if have.OS == "" && have.Architecture == "" {
		// Hand-made images may not say; take them as what was asked for.
		have = &want
	}
	if !platformMatches(*have, want) {
		return nil, &PlatformError{Ref: s.Ref, Want: want.String(), Have: []string{have.String()}}
	}
	s.Platform = have.String()
	s.Config = runConfig(cf.Config)
	if s.Uncompressed {
		// An archive's manifest digest would mean compressing every
		// layer; its config digest (the image ID) identifies it as well.
		h, err := s.Image.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w", s.Ref, err)
		}
		s.Digest = h.String()
		return s, nil
	}
	h, err := s.Image.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", s.Ref, err)
	}
	s.Digest = h.String()
	m, err := s.Image.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %q: %w", s.Ref, err)
	}
	for _, l := range m.Layers {
		s.Total += l.Size
	}
	return s, nil
}

// runConfig is what of an OCI config banger records: copies, so the
// manifest shares nothing with ggcr's structures.
func runConfig(c v1.Config) image.Config {
	return image.Config{
		Entrypoint: slices.Clone(c.Entrypoint), Cmd: slices.Clone(c.Cmd), Env: slices.Clone(c.Env),
		WorkingDir: c.WorkingDir, User: c.User,
	}
}

// platformMatches is v1.Platform.Satisfies, with an empty variant in the
// image accepted for any wanted variant.
func platformMatches(have, want v1.Platform) bool {
	return have.OS == want.OS && have.Architecture == want.Architecture &&
		(want.Variant == "" || have.Variant == "" || have.Variant == want.Variant)
}
