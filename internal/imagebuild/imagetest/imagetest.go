// Package imagetest builds OCI images for tests, layer by layer from tar
// entries, and serves them from a real registry on 127.0.0.1.
package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Entry is one tar entry. Zero fields get defaults: a regular file, mode
// 0644 (0755 for directories), owned by root.
type Entry struct {
	Name     string
	Type     byte
	Body     string
	Linkname string
	Mode     int64
	UID, GID int
	Major    int64
	Minor    int64
	Xattrs   map[string]string
}

// Dir, File, Symlink, Hardlink and Whiteout build common entries.
func Dir(name string) Entry        { return Entry{Name: name, Type: tar.TypeDir} }
func File(name, body string) Entry { return Entry{Name: name, Body: body} }
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Linkname: target}
}
func Hardlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Linkname: target}
}
func Whiteout(dir, name string) Entry    { return File(strings.TrimPrefix(dir+"/.wh."+name, "/"), "") }
func Opaque(dir string) Entry            { return File(dir+"/.wh..wh..opq", "") }
func Owned(e Entry, uid, gid int) Entry  { e.UID, e.GID = uid, gid; return e }
func WithMode(e Entry, mode int64) Entry { e.Mode = mode; return e }

// Tar writes entries as an uncompressed tar stream.
func Tar(entries ...Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Linkname, Mode: e.Mode,
			Uid: e.UID, Gid: e.GID, Devmajor: e.Major, Devminor: e.Minor, ModTime: mtime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		for k, v := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("imagetest: %v", err))
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				panic(fmt.Sprintf("imagetest: %v", err))
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(fmt.Sprintf("imagetest: %v", err))
	}
	return buf.Bytes()
}

// Layer is a gzip-compressed layer holding entries.
func Layer(entries ...Entry) v1.Layer { return LayerFrom(Tar(entries...), compression.GZip) }

// LayerFrom is a layer from an uncompressed tar stream, compressed with c.
func LayerFrom(data []byte, c compression.Compression) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompression(c))
	if err != nil {
		panic(fmt.Sprintf("imagetest: %v", err))
	}
	return l
}

// Image stacks layers (base first) into an image for platform "os/arch".
func Image(platform string, layers ...v1.Layer) v1.Image {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		panic(fmt.Sprintf("imagetest: %v", err))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		panic(fmt.Sprintf("imagetest: %v", err))
	}
	cf = cf.DeepCopy()
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		panic(fmt.Sprintf("imagetest: %v", err))
	}
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		panic(fmt.Sprintf("imagetest: %v", err))
	}
	return img
}

// Index puts images into a multi-platform index, each under its config's
// platform.
func Index(images ...v1.Image) v1.ImageIndex {
	var adds []mutate.IndexAddendum
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			panic(fmt.Sprintf("imagetest: %v", err))
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: cf.Platform()}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// Registry is a real OCI registry (ggcr's) on 127.0.0.1 that counts the
// blob downloads it serves and can be slowed down.
type Registry struct {
	Server    *httptest.Server
	Host      string // 127.0.0.1:PORT
	BlobGets  atomic.Int64
	BlobDelay atomic.Int64 // nanoseconds to wait before each blob download
	// DelayFrom is the first blob download (counting from 1) that
	// BlobDelay holds; 0 or 1 holds every one. A delayed download ends
	// early, unserved, when its client goes away.
	DelayFrom atomic.Int64
}

// NewRegistry starts a registry; Close it when done.
func NewRegistry() *Registry {
	r := &Registry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			n := r.BlobGets.Add(1)
			if d := time.Duration(r.BlobDelay.Load()); d > 0 && n >= r.DelayFrom.Load() {
				select {
				case <-time.After(d):
				case <-req.Context().Done():
					return
				}
			}
		}
		h.ServeHTTP(w, req)
	}))
	r.Host = strings.TrimPrefix(r.Server.URL, "http://")
	return r
}

// Close stops the registry.
func (r *Registry) Close() { r.Server.Close() }

// Push stores img in the registry as repo:tag and returns the reference.
func (r *Registry) Push(repoTag string, img v1.Image) (string, error) {
	ref := r.Host + "/" + repoTag
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	return ref, remote.Write(tag, img)
}

// PushIndex stores idx as repo:tag.
func (r *Registry) PushIndex(repoTag string, idx v1.ImageIndex) (string, error) {
	ref := r.Host + "/" + repoTag
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	return ref, remote.WriteIndex(tag, idx)
}

// DirLayer is a gzip-compressed layer of the tree at dir: its
// directories, regular files and symbolic links with their modes, owned
// by root.
func DirLayer(dir string) (v1.Layer, error) {
	var entries []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := int64(info.Mode().Perm())
		switch {
		case d.IsDir():
			entries = append(entries, WithMode(Dir(rel), mode))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entries = append(entries, Symlink(rel, target))
		case d.Type().IsRegular():
			body, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entries = append(entries, WithMode(File(rel, string(body)), mode))
		default:
			return fmt.Errorf("%s: not a directory, regular file or symbolic link", p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return Layer(entries...), nil
}
