// Package kernelstore keeps installed kernels: one directory per name under
// the kernels directory, holding vmlinux, an optional initrd.img and
// modules/ tree, and a manifest.json describing where they came from.
// Directories appear under their name only complete and verified.
package kernelstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/archive"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/stagedir"
)

// ErrNotInstalled is wrapped by errors for kernels that are not installed.
var ErrNotInstalled = errors.New("kernel not installed")

// Source values recorded in manifests.
const (
	SourceCatalog = "catalog"
	SourceImport  = "import"
)

// ManifestFile is the name of the manifest inside a kernel directory.
const ManifestFile = "manifest.json"

// Manifest describes one installed kernel.
type Manifest struct {
	Name          string `json:"name"`
	Distro        string `json:"distro"`
	Arch          string `json:"arch"`
	KernelVersion string `json:"kernel_version"`
	Description   string `json:"description"`
	Source        string `json:"source"`
	// CatalogName is the catalog entry's name when the kernel was pulled
	// under another local name (PullOptions.As).
	CatalogName   string         `json:"catalog_name,omitempty"`
	URL           string         `json:"url,omitempty"`
	TarballSHA256 string         `json:"tarball_sha256,omitempty"`
	TarballSize   int64          `json:"tarball_size,omitempty"`
	InstalledAt   time.Time      `json:"installed_at"`
	Files         []archive.File `json:"files"`

	dir string
}

// CatalogEntry is the name of the catalog entry the kernel was pulled
// from ("" for an import).
func (m *Manifest) CatalogEntry() string {
	switch {
	case m.Source != SourceCatalog:
		return ""
	case m.CatalogName != "":
		return m.CatalogName
	}
	return m.Name
}

// Dir is the kernel's install directory.
func (m *Manifest) Dir() string { return m.dir }

// VMLinux is the path of the kernel image.
func (m *Manifest) VMLinux() string { return filepath.Join(m.dir, "vmlinux") }

// Initrd is the path of the initrd, or "" when the kernel has none.
func (m *Manifest) Initrd() string {
	for _, f := range m.Files {
		if f.Path == "initrd.img" {
			return filepath.Join(m.dir, "initrd.img")
		}
	}
	return ""
}

// Size is the total size of the kernel's regular files.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Store is a kernels directory.
type Store struct {
	dir  string
	opts Options
}

// Options tune a Store. The zero value is what banger uses.
type Options struct {
	// Step, if set, is called as an install (Pull or Import) passes each
	// of its steps towards disk, StepStaged, StepFlushed and
	// StepPublished in that order, so tests can check the order or kill
	// the process there.
	Step func(step string)
}

// The steps of an install, as Options.Step reports them. Each is reported
// once what it names is done.
const (
	// StepStaged: every file and the manifest are written in the hidden
	// staging directory, their write-back started but not waited for.
	StepStaged = "staged"
	// StepFlushed: the staging directory's file system is flushed, so all
	// of it is on stable storage; it is not yet under the kernel's name.
	StepFlushed = "flushed"
	// StepPublished: the staging directory is renamed to the kernel's
	// name and the kernels directory flushed.
	StepPublished = "published"
)

// New returns the store rooted at dir (paths.Layout.KernelsDir). Nothing is
// created until something is installed.
func New(dir string) *Store { return &Store{dir: dir} }

// NewWithOptions is New with opts.
func NewWithOptions(dir string, opts Options) *Store { return &Store{dir: dir, opts: opts} }

func (s *Store) step(name string) {
	if s.opts.Step != nil {
		s.opts.Step(name)
	}
}

// Dir is the kernels directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) lockPath(name string) string { return filepath.Join(s.dir, ".locks", name+".lock") }

// Get reads the manifest of an installed kernel and checks its vmlinux is
// present.
func (s *Store) Get(name string) (*Manifest, error) {
	if err := paths.ValidateName("kernel", name); err != nil {
		return nil, err
	}
	dir := s.path(name)
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr == nil {
			return nil, &stagedir.BrokenError{Kind: "kernel", Name: name, Reason: ManifestFile + " is missing", Replaceable: true}
		}
		return nil, fmt.Errorf("kernel %q is not installed (hint: run \"banger kernel pull %s\"): %w", name, name, ErrNotInstalled)
	}
	if err != nil {
		return nil, fmt.Errorf("reading kernel %q: %w", name, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &stagedir.BrokenError{Kind: "kernel", Name: name, Reason: fmt.Sprintf("unreadable %s: %v", ManifestFile, err),
			Hint: fmt.Sprintf("run \"banger kernel rm %s\" and install it again", name), Err: err}
	}
	m.dir = dir
	// Manifests written before banger had one spelling may say aarch64.
	m.Arch = arch.Or(m.Arch, m.Arch)
	st, err := os.Lstat(m.VMLinux())
	switch {
	case err != nil:
		return nil, &stagedir.BrokenError{Kind: "kernel", Name: name, Reason: "vmlinux is missing",
			Hint: fmt.Sprintf("run \"banger kernel rm %s\" and install it again", name)}
	case !st.Mode().IsRegular():
		return nil, &stagedir.BrokenError{Kind: "kernel", Name: name, Reason: "vmlinux is not a regular file"}
	}
	return &m, nil
}

// Listing is one directory in the store: a good kernel, or a broken one
// with the reason.
type Listing = stagedir.Listing[*Manifest]

// List returns every installed kernel sorted by name. A broken one does
// not hide the others: it is listed with the reason. Partial downloads
// older than a week that no pull is using are pruned on the way.
func (s *Store) List() ([]Listing, error) {
	s.prunePartials()
	return stagedir.List(s.dir, "kernel", s.Get)
}
