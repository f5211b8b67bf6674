package kernelstore

import (
	"fmt"
	"path/filepath"

	"github.com/thaloco/banger/internal/stagedir"
)

// tempDir creates a hidden build directory for name beside its target so
// the final rename stays on one filesystem.
func (s *Store) tempDir(name string) (string, error) {
	dir, err := stagedir.Create(s.dir, name)
	if err != nil {
		return "", fmt.Errorf("kernel %q: %w", name, err)
	}
	return dir, nil
}

// cleanLeftovers removes what interrupted runs left for name. The caller
// holds name's lock.
func (s *Store) cleanLeftovers(name string) { stagedir.CleanLeftovers(s.dir, name) }

// writeManifest writes m into dir, durably.
func writeManifest(dir string, m *Manifest) error {
	return stagedir.WriteJSON(filepath.Join(dir, ManifestFile), m)
}

// commit makes the complete directory tmp visible as kernel name,
// atomically replacing an existing install. The extractor has flushed the
// files and writeManifest the manifest, so a crash cannot leave a kernel
// with missing data under its name.
func (s *Store) commit(tmp, name string) error {
	if err := stagedir.Publish(s.dir, tmp, name, true); err != nil {
		return fmt.Errorf("installing kernel %q: %w", name, err)
	}
	return nil
}
