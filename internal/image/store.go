// Package image keeps banger's images: one directory per name under the
// images directory, holding an ext4 root filesystem (rootfs.ext4) and a
// manifest.json naming the kernel it boots with and where it came from.
// Directories appear under their name only complete.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
)

// ErrNotFound is wrapped by errors for images that do not exist.
var ErrNotFound = errors.New("image not found")

// ErrExists is wrapped when an image name is taken and replacing it was
// not asked for (see ExistsError).
var ErrExists = errors.New("image already exists")

// ErrNoKernel is returned when an image is registered without a kernel.
var ErrNoKernel = errors.New("image register needs a kernel")

// ExistsError says the image Name is taken; it is ErrExists.
type ExistsError struct{ Name string }

func (e *ExistsError) Error() string { return fmt.Sprintf("image %q already exists", e.Name) }

func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// Source values recorded in manifests.
const (
	SourceRegister = "register"
	SourceBuild    = "build"
)

// File names inside an image directory.
const (
	ManifestFile = "manifest.json"
	RootfsFile   = "rootfs.ext4"
)

// Manifest describes one image.
type Manifest struct {
	Name         string `json:"name"`
	KernelRef    string `json:"kernel_ref"`
	RootfsSize   int64  `json:"rootfs_size"`
	RootfsSHA256 string `json:"rootfs_sha256"`
	Source       string `json:"source"`
	// Register: the file the rootfs was copied from.
	RegisteredFrom string `json:"registered_from,omitempty"`
	// Build: the OCI image reference, its resolved digest and platform,
	// the distribution found in it, the base packages banger installed
	// and the package hash naming the build cache.
	ImageRef    string `json:"image_ref,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
	Platform    string `json:"platform,omitempty"`
	// Arch is the architecture of the image's programs (package arch),
	// from the platform it was built for; "" when unknown (registered
	// images, whose VMs take their kernel's).
	Arch        string   `json:"arch,omitempty"`
	OS          string   `json:"os,omitempty"`
	Installed   []string `json:"installed_packages,omitempty"`
	PackageHash string   `json:"package_hash,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	// Config is how the OCI image says to run it (builds only; nil for
	// registered images and builds recorded before banger kept it).
	Config    *Config   `json:"config,omitempty"`
	CreatedAt time.Time `json:"created_at"`

	dir string
}

// Architecture is the architecture of the image's programs: Arch, or for
// builds recorded before it, the platform's; "" when unknown.
func (m *Manifest) Architecture() string {
	if m.Arch != "" {
		return arch.Or(m.Arch, m.Arch)
	}
	if _, a, ok := strings.Cut(m.Platform, "/"); ok {
		a, _, _ = strings.Cut(a, "/")
		return arch.Or(a, "")
	}
	return ""
}

// Dir is the image's directory.
func (m *Manifest) Dir() string { return m.dir }

// RootfsPath is the image's ext4 root filesystem.
func (m *Manifest) RootfsPath() string { return filepath.Join(m.dir, RootfsFile) }

// DiskUsage is the space the rootfs really takes (it is a sparse file).
func (m *Manifest) DiskUsage() int64 {
	var st syscall.Stat_t
	if syscall.Stat(m.RootfsPath(), &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

// Store is an images directory.
type Store struct {
	dir  string
	opts Options
}

// Options change how a Store treats its images.
type Options struct {
	// Overlays names what has a disk that overlays the rootfs of the
	// image called name ("VM web", "snapshot web-ready"): a qcow2 file
	// reading from it. Such an image is never removed or replaced, even
	// with force. nil means none.
	Overlays func(name string) ([]string, error)
}

// New returns the store rooted at dir (paths.Layout.ImagesDir). Nothing is
// created until an image is added.
func New(dir string) *Store { return &Store{dir: dir} }

// NewWithOptions is New with opts.
func NewWithOptions(dir string, opts Options) *Store { return &Store{dir: dir, opts: opts} }

// checkOverlays refuses to remove or replace the image called name while
// disks overlay its rootfs. The caller holds the name's lock.
func (s *Store) checkOverlays(name string) error {
	if s.opts.Overlays == nil {
		return nil
	}
	users, err := s.opts.Overlays(name)
	if err != nil {
		return fmt.Errorf("image %q: finding the disks that overlay it: %w", name, err)
	}
	if len(users) > 0 {
		return &stagedir.InUseError{Kind: "image", Name: name, Users: users, Backing: true}
	}
	return nil
}

// Dir is the images directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) lockPath(name string) string { return filepath.Join(s.dir, ".locks", name+".lock") }

// RootfsPath is where the rootfs of the image called name lives.
func (s *Store) RootfsPath(name string) string { return filepath.Join(s.path(name), RootfsFile) }

func notFound(name string) error {
	return fmt.Errorf("image %q not found (hint: run \"banger image list\", or create it with \"banger image build\" or \"banger image register\"): %w", name, ErrNotFound)
}

// Get reads the manifest of the image called name and checks its rootfs
// is present.
func (s *Store) Get(name string) (*Manifest, error) {
	if err := paths.ValidateName("image", name); err != nil {
		return nil, err
	}
	dir := s.path(name)
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr == nil {
			return nil, broken(name, ManifestFile+" is missing", nil)
		}
		return nil, notFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading image %q: %w", name, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, broken(name, fmt.Sprintf("unreadable %s: %v", ManifestFile, err), err)
	}
	m.dir = dir
	st, err := os.Lstat(m.RootfsPath())
	switch {
	case err != nil:
		return nil, broken(name, RootfsFile+" is missing", nil)
	case !st.Mode().IsRegular():
		return nil, &stagedir.BrokenError{Kind: "image", Name: name, Reason: RootfsFile + " is not a regular file"}
	}
	return &m, nil
}

// broken is the error for an image directory that is not a whole image.
func broken(name, reason string, err error) error {
	return &stagedir.BrokenError{Kind: "image", Name: name, Reason: reason, Err: err,
		Hint: fmt.Sprintf("run \"banger image rm %s\" and create it again", name)}
}

// Listing is one directory in the store: a good image, or a broken one
// with the reason.
type Listing = stagedir.Listing[*Manifest]

// List returns every image sorted by name. A broken one does not hide the
// others: it is listed with the reason.
func (s *Store) List() ([]Listing, error) { return stagedir.List(s.dir, "image", s.Get) }

// KernelUsers names the images whose kernel_ref is kernel, sorted.
func (s *Store) KernelUsers(kernel string) ([]string, error) {
	ls, err := s.List()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range ls {
		if l.Manifest != nil && l.Manifest.KernelRef == kernel {
			names = append(names, l.Name)
		}
	}
	return names, nil
}
