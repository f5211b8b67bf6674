package kernelstore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Leftovers of interrupted runs are hidden dot-directories beside the
// kernels: .tmp-<name>-<rand> (being built) and .old-<name>-<rand> (being
// removed). They are only deleted while the name's lock is held.

func randSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tempDir creates a hidden build directory for name beside its target so
// the final rename stays on one filesystem.
func (s *Store) tempDir(name string) (string, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return "", fmt.Errorf("creating kernels directory %s: %w", s.dir, err)
	}
	dir := filepath.Join(s.dir, ".tmp-"+name+"-"+randSuffix())
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating temporary directory for kernel %q: %w", name, err)
	}
	return dir, nil
}

// cleanLeftovers removes what interrupted runs left for name. The caller
// holds name's lock.
func (s *Store) cleanLeftovers(name string) {
	for _, prefix := range []string{".tmp-", ".old-"} {
		matches, _ := filepath.Glob(filepath.Join(s.dir, prefix+name+"-*"))
		for _, m := range matches {
			// The suffix is 12 hex digits: don't touch another name that
			// merely starts with this one.
			if rest := strings.TrimPrefix(filepath.Base(m), prefix+name+"-"); len(rest) == 12 && !strings.Contains(rest, "-") {
				os.RemoveAll(m)
			}
		}
	}
}

// writeManifest writes m into dir, durably.
func writeManifest(dir string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ManifestFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	return nil
}

// commit makes the complete directory tmp visible as kernel name,
// atomically replacing an existing install, and removes the old one. The
// extractor has flushed the files, writeManifest the manifest; tmp itself
// is synced here so a crash cannot leave a kernel with missing data under
// its name.
func (s *Store) commit(tmp, name string) error {
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("flushing kernel %q to disk: %w", name, err)
	}
	final := s.path(name)
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) || errors.Is(err, fs.ErrExist) {
		// Swap the new tree in atomically; the old one ends up at tmp.
		if err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE); err == nil {
			old := filepath.Join(s.dir, ".old-"+name+"-"+randSuffix())
			if os.Rename(tmp, old) == nil {
				os.RemoveAll(old)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("installing kernel %q into %s: %w", name, final, err)
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
