package stagedir

import (
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveAll removes dir and everything in it like os.RemoveAll. An
// unprivileged image build leaves read-only directories, which
// os.RemoveAll cannot empty: when it fails, RemoveAll makes every
// directory in dir writable and tries again. Symlinks are not followed.
func RemoveAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		// A directory is seen before it is read, so a directory without
		// read permission is fixed before WalkDir needs to list it.
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
